"""Charts drawn on the server as SVG: pure functions from plain rows to markup.

Nothing here reads the metastore or knows Flask, so each chart is tested with rows
made up in the test. The pages (:mod:`cluster.web.pages.dag_charts`) load the rows and
put the SVG in a template; the pages need no JavaScript and no library from a CDN.
Every mark that shows a state carries the state in its ``<title>`` (and a legend
names the colours), so no state is told by colour alone.
"""
