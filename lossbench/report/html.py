"""`index.html`: the whole report as one self-contained page (opens from a shared folder or an e-mail: no
server, no request to the network). Jinja2 renders `templates/report.html.j2` with the page model
(page.py: the group tables' numbers and marks as the markdown and CSV have them), the report's own
matplotlib figures as SVG data URIs, the data of the drill-down and of the interactive curves as one JSON
object (drill.py), and the page's CSS and script, all inline.

Why these libraries. The figures are the report's matplotlib figures (plotting.save writes each as SVG
beside the PNG and PDF): one drawing code for the paper and the page, about 20 KB a figure with text kept as
text (the PNG is three times that). Interaction is a small hand-written script (templates/report.js, no
dependency): sortable tables, the drill-down (every number opens the runs behind it) and learning curves whose
hover shows the value and the run, drawn only when they scroll into view. Measured against the chart
libraries the issue names (docs/html-report.md): plotly's offline bundle (plotly.min.js, plotly 7.1.0) is
4.8 MB before any data, the whole 5 MB budget of a 100-run page; Vega-Lite through altair needs vega,
vega-lite and vega-embed inlined, 0.83 MB minified (vega 6.4, vega-lite 6.4, vega-embed 7.3), then compiles
a dataflow per chart at load, and would draw a second version of every figure that the paper's PNG and PDF
would not match.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from lossbench.report.captions import TIE
from lossbench.report.drill import payload
from lossbench.report.page import Sources, page_model

log = logging.getLogger(__name__)
READY = "lossbench-ready"  # the performance mark the page's script sets once the page is interactive


def embedded(path: Path) -> dict[str, Any]:
    """An SVG figure as an <img>'s source (a data URI: the figure stays out of the page's DOM) and its size in
    CSS pixels (so the page does not shift as figures load)."""
    data = path.read_bytes()
    size = {k: round(float(v) * 4 / 3) for k, v in re.findall(rb'\b(width|height)="([\d.]+)pt"', data[:2000])}
    return {"src": "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii"),
            "width": size.get(b"width"), "height": size.get(b"height")}


def script_json(data: Any) -> Markup:
    """JSON safe inside a <script> element: no `<` (so no `</script>`), NaN refused."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c"))


def environment() -> Environment:
    """The page's Jinja2 environment: templates from the package, HTML escaped, undefined names an error."""
    env = Environment(loader=PackageLoader("lossbench.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(TIE=TIE, READY=READY)
    return env


def render(sources: Sources) -> str:
    """The page's HTML."""
    env = environment()
    asset = lambda name: Markup(env.loader.get_source(env, name)[0])  # noqa: E731 (CSS and script, verbatim)
    return env.get_template("report.html.j2").render(
        **page_model(sources, embedded), data=script_json(payload(sources)), css=asset("report.css"),
        script=asset("report.js")).lstrip()


def write_html(sources: Sources, out: Path) -> Path:
    """Write `out/index.html`; its path."""
    path = out / "index.html"
    path.write_text(render(sources), encoding="utf-8")
    log.info("wrote %s (%.2f MB)", path, path.stat().st_size / 1e6)
    return path
