"""Render the monitoring role's rule template exactly as the role does (Ansible's Templar, the role's
defaults and vars), with the thresholds of a config's plan (default: config.example.yml)."""
import os
import shutil
import subprocess

import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(ROOT, "roles", "monitoring")
EXAMPLE = os.path.join(ROOT, "config.example.yml")
RULES_TEMPLATE = os.path.join(ROLE, "templates", "gpu-alerts.rules.yml.j2")
USAGE_TEMPLATE = os.path.join(ROLE, "templates", "gpu-usage.rules.yml.j2")
VALUES_TEMPLATE = os.path.join(ROLE, "templates", "values.yml.j2")
RUNBOOKS = os.path.join(ROOT, "docs", "operations", "runbooks.md")
PROMTOOL_TESTS = os.path.join(ROOT, "tests", "promtool")
DASHBOARDS = os.path.join(ROLE, "files", "dashboards")
PROMTOOL_VERSION = os.environ.get("PROMTOOL_VERSION", "3.14.0")
PROMTOOL = os.environ.get("PROMTOOL") or os.path.join(
    os.environ.get("GPUFLEET_TOOLS_CACHE") or os.path.expanduser("~/.cache/gpufleet/tools"),
    "prometheus-%s" % PROMTOOL_VERSION, "promtool")


def plan(config_path=EXAMPLE, overrides=None):
    with open(config_path) as fh:
        config = yaml.safe_load(fh)
    for key, value in (overrides or {}).items():
        config["services"]["monitoring"].setdefault("alerts", {})[key] = value
    return config_plan.validate(config)


def role_vars(the_plan, extra=None):
    variables = {"gpufleet_plan": the_plan}
    for rel in ("defaults/main.yml", "vars/main.yml"):
        with open(os.path.join(ROLE, rel)) as fh:
            variables.update(yaml.safe_load(fh))
    variables.update(extra or {})
    return variables


def render_rules(the_plan=None, template=RULES_TEMPLATE, extra=None):
    """The rule groups the role puts in a PrometheusRule spec, as text (a promtool rules file): the GPU alerts
    (default) or, with template=USAGE_TEMPLATE, the GPU allocation and GPU-hours recording rules."""
    loader = DataLoader()
    loader.set_basedir(ROLE)
    templar = Templar(loader=loader, variables=role_vars(the_plan or plan(), extra))
    with open(template) as fh:
        return templar.template(fh.read(), escape_backslashes=False)


def render_usage_rules(the_plan=None, extra=None):
    return render_rules(the_plan, USAGE_TEMPLATE, extra)


_PLUGINS = []


def render_objects(the_plan=None, extra=None):
    """The objects the configure step applies (templates/objects.yml.j2): rules, dashboard ConfigMaps, monitors.
    The template reads the rule templates and dashboard files through lookups: the plugin loader must be up."""
    if not _PLUGINS:
        import warnings
        from ansible.plugins.loader import init_plugin_loader
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the collection finder may be up already (tests/conftest.py)
            init_plugin_loader()
        _PLUGINS.append(True)
    text = render_rules(the_plan, os.path.join(ROLE, "templates", "objects.yml.j2"), extra)
    return [d for d in yaml.safe_load_all(text) if d]


def run(*args, cwd=None):
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


def promtool_dir(directory, name, rules_text):
    """``directory`` with <name>.rules.yml (``rules_text``) beside a copy of tests/promtool/<name>.test.yml."""
    (directory / (name + ".rules.yml")).write_text(rules_text)
    shutil.copy(os.path.join(PROMTOOL_TESTS, name + ".test.yml"), directory / (name + ".test.yml"))
    return directory


def check_rules(promtool, directory, name, count):
    """`promtool check rules` on <name>.rules.yml passes and finds ``count`` rules."""
    out = run(promtool, "check", "rules", str(directory / (name + ".rules.yml")))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: %d rules found" % count in out.stdout


def unit_test_rules(promtool, directory, name):
    """`promtool test rules <name>.test.yml` in ``directory``: the completed process."""
    return run(promtool, "test", "rules", name + ".test.yml", cwd=str(directory))
