"""Small Sphinx fixes for the reid-book site (loaded through ``_config.yml``'s local_extensions).

* Jupyter Book 1.x adds sphinx-thebe's inline configuration script twice to every page, and the
  second ``const THEBE_JS_URL = ...`` throws "Identifier has already been declared" in the browser
  (caught by ``book/check_site.py``). Drop repeated identical scripts from each page's context.
"""

from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        # the same script is registered twice, once with filename None and once with "" (and
        # possibly another priority): compare what the page would contain
        key = (str(getattr(script, "filename", script) or ""),
               tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
