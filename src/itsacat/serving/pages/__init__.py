"""HTML pages of the service, filled in with `string.Template` after HTML-escaping every value."""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from string import Template


@cache
def _template(name: str) -> Template:
    return Template(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


def render_page(name: str, **values: object) -> str:
    """Fill the page `name` with `values`, each escaped, so a URL cannot inject markup."""
    return _template(name).substitute({key: html.escape(str(value), quote=True)
                                       for key, value in values.items()})
