"""The metric names a PromQL expression selects, without a PromQL parser: strings, label matchers, grouping
clauses and ranges are removed, then every identifier that is not a function, keyword or aggregation modifier is a
metric name. ``{__name__=~"a|b"}`` selectors count each alternative. tests/integration/test_usage_report.py
checks this against the real parser (Prometheus' /api/v1/parse_query) for every dashboard expression."""
import re

STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
NAME_MATCHER = re.compile(r'__name__\s*=~?\s*"((?:[^"\\]|\\.)*)"')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
MATCHERS = re.compile(r"\{[^}]*\}")
RANGE = re.compile(r"\[[^\]]*\]")
IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])\s*(\()?")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "atan2", "inf", "nan", "Inf", "NaN", "start", "end", "step", "limitk", "limit_ratio"}


def metric_names(expr):
    """The set of metric names ``expr`` selects."""
    names = set()
    for match in NAME_MATCHER.finditer(expr):
        names.update(alt for alt in match.group(1).split("|") if alt)
    text = STRING.sub('""', expr)
    text = GROUPING.sub(" ", text)
    text = MATCHERS.sub(" ", text)
    text = RANGE.sub(" ", text)
    for match in IDENT.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word in KEYWORDS or re.fullmatch(r"[0-9.eE+-]+", word):
            continue
        names.add(word)
    return names
