"""Server-rendered pages: the admin dashboard and the referrer portal.

Every template is rendered with autoescaping on, so user-supplied text (user ids,
emails, reasons) is always HTML-escaped; nothing is marked safe unless built here.
"""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
