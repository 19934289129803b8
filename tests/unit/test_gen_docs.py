"""tools/gen_docs.py: the role README variable tables it generates from meta/argument_specs.yml."""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SPEC = importlib.util.spec_from_file_location("gen_docs", os.path.join(ROOT, "tools", "gen_docs.py"))
gen_docs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gen_docs)


@pytest.mark.parametrize("text, markdown", [
    ("C(auto) or I(any) or B(this)", "`auto` or *any* or **this**"),
    ("with C(hostvars | f(hosts)) here", "with `hostvars | f(hosts)` here"),  # nested parentheses
    ("O(x=1), V(y), U(https://example.com), L(the docs,https://example.com/d)",
     "`x=1`, `y`, https://example.com, [the docs](https://example.com/d)"),
    ("unbalanced C(oops", "unbalanced C(oops"),
    ("ABC(x) is not markup", "ABC(x) is not markup"),
])
def test_markup(text, markdown):
    assert gen_docs._markup(text) == markdown


def test_table_rows_cells_and_entry_points():
    specs = {"argument_specs": {
        "main": {"options": {
            "r_a": {"type": "list", "elements": "str", "default": ["x"], "description": ["One", "C(a|b) <pool>"]},
            "r_b": {"type": "str", "choices": ["on", "off"], "required": True, "description": "Two."},
        }},
        "extra": {"options": {"r_a": {"type": "list"}}},
    }}
    assert gen_docs.render_role_variables(specs) == "\n".join([
        "| variable | type | default | description |",
        "|---|---|---|---|",
        '| `r_a` | list of str | `["x"]` | One `a\\|b` &lt;pool> |',
        "| `r_b` | str: `on`, `off` | required | Two. |",
        "",
        "Entry point `extra` (`tasks_from: extra`) takes `r_a`.",
    ]) + "\n"


def test_readme_without_markers_is_an_error(tmp_path):
    role = tmp_path / "r"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text("argument_specs: {main: {options: {}}}\n")
    render = gen_docs._role_readme_renderer(str(role) + os.sep)
    with pytest.raises(ValueError, match="no generated variables block"):
        render("# r\n\n## Variables\n")
    text = "# r\n\n## Variables\n\n%s\nold\n%s\n\nprose\n" % (gen_docs.ROLE_BEGIN, gen_docs.ROLE_END)
    assert render(text) == "# r\n\n## Variables\n\n%s\nThis role has no variables.\n%s\n\nprose\n" % (
        gen_docs.ROLE_BEGIN, gen_docs.ROLE_END)
