# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""The one loader of config.yml, bounded against hostile files.

Both the inventory plugin and the validate action read config.yml through ``load()``, so a file is
refused the same way (the same message, naming the file given) whichever way it comes in. The
limits hold before the data exists: the size is checked before reading, the bytes must be UTF-8
text, and a pass over the parser's events (no objects built) counts the values the document
would hold with every alias expanded and how deep it nests, so an alias bomb is refused after
reading a few lines. Duplicate keys are errors naming both lines. Messages never quote the file's
content (a line may hold a secret): they give the line and column.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

try:
    import yaml
    from yaml.constructor import ConstructorError, SafeConstructor
    from yaml.resolver import Resolver
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None
    SafeConstructor = object

MAX_BYTES = 1024 * 1024
MAX_VALUES = 30000  # a 2000-node fleet needs about 20000 (10 or so per node)
MAX_DEPTH = 32
MERGE_TAG = "tag:yaml.org,2002:merge"


class ConfigFileError(ValueError):
    """config.yml cannot be loaded; the message names the file and says why."""


def _line_col(data, offset):
    line = data.count(b"\n", 0, offset) + 1
    return line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


class _DuplicateKey(Exception):
    def __init__(self, key, first, second):
        super(_DuplicateKey, self).__init__(key)
        self.key, self.first, self.second = key, first, second


class _Constructor(SafeConstructor):
    """SafeConstructor that refuses a key given twice in one mapping (merge keys aside)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _value in node.value:
                if key_node.tag == MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable: SafeConstructor reports it
                if first is not None:
                    raise _DuplicateKey(key, first, key_node.start_mark.line + 1)
                seen[key] = key_node.start_mark.line + 1
        return super(_Constructor, self).construct_mapping(node, deep=deep)


if yaml is not None:
    try:
        from yaml.cyaml import CParser as _Parser
    except ImportError:  # pragma: no cover - libyaml is optional
        _Parser = None

    if _Parser is not None:
        class _Loader(_Parser, _Constructor, Resolver):
            def __init__(self, stream):
                _Parser.__init__(self, stream)
                _Constructor.__init__(self)
                Resolver.__init__(self)
    else:  # pragma: no cover - libyaml is optional
        from yaml.composer import Composer
        from yaml.parser import Parser
        from yaml.reader import Reader
        from yaml.scanner import Scanner

        class _Loader(Reader, Scanner, Parser, Composer, _Constructor, Resolver):
            def __init__(self, stream):
                Reader.__init__(self, stream)
                Scanner.__init__(self)
                Parser.__init__(self)
                Composer.__init__(self)
                _Constructor.__init__(self)
                Resolver.__init__(self)


def _read(path, max_bytes):
    try:
        info = os.stat(path)
    except OSError:
        raise ConfigFileError("config file %s not found; copy config.example.yml to config.yml, or pass "
                              "-e gpufleet_config_file=PATH" % path)
    if not stat.S_ISREG(info.st_mode):
        raise ConfigFileError("%s is not a regular file; give the path of config.yml" % path)
    if info.st_size > max_bytes:
        raise ConfigFileError("%s is too large (%d bytes; the limit is %d): config.yml is a short text file"
                              % (path, info.st_size, max_bytes))
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except (IOError, OSError) as exc:
        raise ConfigFileError("%s cannot be read: %s" % (path, exc.strerror or exc))
    if len(data) > max_bytes:
        raise ConfigFileError("%s is too large (more than %d bytes): config.yml is a short text file"
                              % (path, max_bytes))
    return data


def _decode(path, data):
    if b"\x00" in data:
        raise ConfigFileError("%s is a binary file (a NUL byte at line %d, column %d), not YAML text"
                              % ((path,) + _line_col(data, data.index(b"\x00"))))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_col(data, exc.start)
        raise ConfigFileError("%s is not UTF-8 text (byte 0x%02x at line %d, column %d cannot be decoded); "
                              "save it as UTF-8" % (path, data[exc.start], line, column))
    return text[1:] if text.startswith(u"\ufeff") else text


def _yaml_error(path, exc):
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = "line %d, column %d: " % (mark.line + 1, mark.column + 1) if mark is not None else ""
    problem = getattr(exc, "problem", None) or "cannot be parsed"
    context = getattr(exc, "context", None)
    context = "%s, " % context if context else ""
    return ConfigFileError("%s is not valid YAML: %s%s%s" % (path, where, context, problem))


def _check_events(path, text, max_values, max_depth):
    """Count the values the document holds with aliases expanded, and its depth, from parser events only."""
    values, depth, documents = 0, 0, 0
    open_nodes = []   # (anchor, values before the collection started)
    sizes = {}        # anchor -> values under it
    loader = _Loader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            line = event.start_mark.line + 1
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise ConfigFileError("%s holds more than one YAML document (a second one starts at line %d); "
                                          "config.yml is one document" % (path, line))
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                values += 1
                depth += 1
                if depth > max_depth:
                    raise ConfigFileError("%s nests deeper than %d levels (line %d); config.yml needs far fewer"
                                          % (path, max_depth, line))
                open_nodes.append((event.anchor, values - 1))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                anchor, start = open_nodes.pop()
                depth -= 1
                if anchor is not None:
                    sizes[anchor] = values - start
            elif isinstance(event, yaml.ScalarEvent):
                values += 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor in (anchor for anchor, _start in open_nodes):
                    raise ConfigFileError("%s: the alias at line %d repeats a node that contains it (a recursive "
                                          "structure); config.yml must be a tree" % (path, line))
                if event.anchor not in sizes:
                    raise ConfigFileError("%s is not valid YAML: line %d, column %d: an alias names no anchor "
                                          "defined before it" % (path, line, event.start_mark.column + 1))
                values += sizes[event.anchor]
            if values > max_values:
                raise ConfigFileError("%s holds more than %d values once its aliases are expanded (by line %d): "
                                      "refused (a YAML alias bomb, or far more than a config.yml holds)"
                                      % (path, max_values, line))
    finally:
        loader.dispose()
    return documents


def _kind(data):
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return "a string"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, (int, float)):
        return "a number"
    return "a %s" % type(data).__name__


def load(path, max_bytes=MAX_BYTES, max_values=MAX_VALUES, max_depth=MAX_DEPTH, tags=None):
    """Load config.yml at ``path`` (a mapping), or raise ConfigFileError naming ``path``.

    ``tags`` maps extra scalar tags (``!vault``, ``!unsafe``) to functions of the scalar text, for the
    plugins to pass Ansible's own; any other tag is refused.
    """
    if yaml is None:  # pragma: no cover
        raise ConfigFileError("reading %s needs the Python package PyYAML on the controller" % path)
    text = _decode(path, _read(path, max_bytes))
    try:
        documents = _check_events(path, text, max_values, max_depth)
        if not documents:
            raise ConfigFileError("%s is empty; start from config.example.yml" % path)
        loader = _Loader(text)
        try:
            if tags:
                loader.yaml_constructors = dict(loader.yaml_constructors)
                for tag, function in tags.items():
                    loader.yaml_constructors[tag] = (
                        lambda self, node, function=function: function(self.construct_scalar(node)))
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except _DuplicateKey as exc:
        raise ConfigFileError("%s: key '%s' is given twice in one mapping, at line %d and at line %d (YAML would "
                              "keep only the last); remove one" % (path, exc.key, exc.first, exc.second))
    except ConstructorError as exc:
        raise _yaml_error(path, exc)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc)
    except RecursionError:
        raise ConfigFileError("%s nests too deeply to load" % path)
    if data is None:
        raise ConfigFileError("%s is empty; start from config.example.yml" % path)
    if not isinstance(data, dict):
        raise ConfigFileError("%s must be a YAML mapping of sections (plugin, cluster, nodes, ...); its top level "
                              "is %s" % (path, _kind(data)))
    return data
