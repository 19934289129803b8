"""Every alert links its runbook: a runbook_url annotation <monitoring_runbook_base_url>#<anchor> whose anchor is a
section of docs/operations/runbooks.md (one per alert: meaning, first checks, fix)."""
import re

import yaml

import render


def slug(heading):
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def sections():
    """{anchor: section text} of the level-2 sections of runbooks.md."""
    with open(render.RUNBOOKS) as fh:
        text = fh.read()
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {slug(parts[i]): parts[i + 1] for i in range(1, len(parts), 2)}


def alerts(extra=None):
    return {r["alert"]: r for g in yaml.safe_load(render.render_rules(extra=extra))["groups"]
            for r in g["rules"] if "alert" in r}


def test_every_alert_has_a_runbook_url_whose_anchor_exists():
    anchors = sections()
    rules = alerts()
    assert rules
    for name, rule in rules.items():
        url = rule["annotations"].get("runbook_url")
        assert url, "%s has no runbook_url" % name
        base, sep, anchor = url.partition("#")
        assert sep and base == "docs/operations/runbooks.md", (name, url)
        assert anchor == name.lower(), (name, url)
        assert anchor in anchors, "%s: no section #%s in docs/operations/runbooks.md" % (name, anchor)


def test_one_section_per_alert_with_meaning_checks_and_fix():
    anchors = sections()
    assert set(anchors) == {name.lower() for name in alerts()}, "sections without an alert, or alerts without one"
    for anchor, body in anchors.items():
        for part in ("**Meaning.**", "**First checks.**", "**Fix.**"):
            assert part in body, "runbooks.md#%s lacks %s" % (anchor, part)


def test_the_base_url_is_a_role_variable():
    base = "https://wiki.example.internal/gpu/runbooks"
    for name, rule in alerts({"monitoring_runbook_base_url": base}).items():
        assert rule["annotations"]["runbook_url"] == "%s#%s" % (base, name.lower())
