"""One line for a YAML syntax error (what and where), shared by campaign, preset and profile readers."""

from __future__ import annotations

import yaml


def yaml_error_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or "syntax error"
    return f"{what} at line {mark.line + 1}, column {mark.column + 1}" if mark else what
