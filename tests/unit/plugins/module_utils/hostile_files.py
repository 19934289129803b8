"""Hostile and careless config.yml files, one per class, with the exact message each is refused with.

Shared by the loader's unit tests (tests/unit/plugins/module_utils/test_config_file.py) and the integration tests
that feed them through ``-i FILE`` and ``-e gpufleet_config_file=FILE``
(tests/integration/test_hostile_config.py). ``{path}`` in a message stands for the file's absolute path.
"""

MARKER = "plugin: gpufleet.platform.config\n"


def _bomb(levels=9, width=9):
    lines = [MARKER.strip(), 'a0: &a0 [%s]' % ", ".join(['"lol"'] * width)]
    for i in range(1, levels):
        lines.append("a%d: &a%d [%s]" % (i, i, ", ".join(["*a%d" % (i - 1)] * width)))
    return ("\n".join(lines) + "\n").encode()


def _deep(levels):
    body = "".join("  " * i + "k%d:\n" % i for i in range(1, levels + 1))
    return (MARKER + "x:\n" + body).encode()


# name -> (file bytes, exact message)
CASES = {
    "empty": (b"", "{path} is empty; start from config.example.yml"),
    "comments-only": (b"# nothing here\n---\n", "{path} is empty; start from config.example.yml"),
    "null-document": (b"~\n", "{path} is empty; start from config.example.yml"),
    "top-level-list": (b"- plugin: gpufleet.platform.config\n",
                       "{path} must be a YAML mapping of sections (plugin, cluster, nodes, ...); its top level is "
                       "a list"),
    "top-level-string": (b'"plugin: gpufleet.platform.config"\n',
                         "{path} must be a YAML mapping of sections (plugin, cluster, nodes, ...); its top level is "
                         "a string"),
    "top-level-number": (b"42\n", "{path} must be a YAML mapping of sections (plugin, cluster, nodes, ...); its top "
                                  "level is a number"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
               "{path} is a binary file (a NUL byte at line 3, column 1), not YAML text"),
    "latin-1": (MARKER.encode() + "cluster: {name: caf\xe9}\n".encode("latin-1"),
                "{path} is not UTF-8 text (byte 0xe9 at line 2, column 20 cannot be decoded); save it as UTF-8"),
    "utf-16": ("plugin: gpufleet.platform.config\n".encode("utf-16"),
               "{path} is a binary file (a NUL byte at line 1, column 4), not YAML text"),
    "too-large": (MARKER.encode() + b"# padding\n" * 110000,
                  "{path} is too large (1100033 bytes; the limit is 1048576): config.yml is a short text file"),
    "alias-bomb": (_bomb(), "{path} holds more than 30000 values once its aliases are expanded (by line 6): "
                            "refused (a YAML alias bomb, or far more than a config.yml holds)"),
    "recursive-alias": (MARKER.encode() + b"x: &a [1, *a]\n",
                        "{path}: the alias at line 2 repeats a node that contains it (a recursive structure); "
                        "config.yml must be a tree"),
    "too-deep": (_deep(40), "{path} nests deeper than 32 levels (line 34); config.yml needs far fewer"),
    "too-deep-flow": (MARKER.encode() + b"x: " + b"[" * 40 + b"]" * 40 + b"\n",
                      "{path} nests deeper than 32 levels (line 2); config.yml needs far fewer"),
    "duplicate-key": (MARKER.encode() + b"cluster:\n  name: a\nnodes: []\ncluster:\n  name: b\n",
                      "{path}: key 'cluster' is given twice in one mapping, at line 2 and at line 5 (YAML would "
                      "keep only the last); remove one"),
    "duplicate-nested-key": (MARKER.encode() + b"cluster:\n  name: a\n  # x\n  name: b\n",
                             "{path}: key 'name' is given twice in one mapping, at line 3 and at line 5 (YAML would "
                             "keep only the last); remove one"),
    "syntax-error": (MARKER.encode() + b"cluster: {name: x\nsecrets: {grafana_admin_password: hunter2: x}\n",
                     "{path} is not valid YAML: line 3, column 8: while parsing a flow mapping, did not find "
                     "expected ',' or '}'"),
    "two-documents": (MARKER.encode() + b"---\ncluster: {name: x}\n",
                      "{path} holds more than one YAML document (a second one starts at line 2); config.yml is "
                      "one document"),
    "top-level-boolean": (b"yes\n",
                          "{path} must be a YAML mapping of sections (plugin, cluster, nodes, ...); its top level is "
                          "a boolean"),
    "unknown-tag": (MARKER.encode() + b"cluster: !!python/object:os.system {name: x}\n",
                    "{path} is not valid YAML: line 2, column 10: could not determine a constructor for the tag "
                    "'tag:yaml.org,2002:python/object:os.system'"),
}


def message(name, path):
    """The exact message for case ``name`` of a file at ``path``."""
    return CASES[name][1].replace("{path}", path)
