"""An open explorer page that nobody touches costs next to no CPU.

Gradio 6.31's status tracker (the "1.2s" counter of a pending event) counts with a
requestAnimationFrame loop that only a later status change stops. A tracker removed from the
page while pending never gets one: the page's own "Loading..." tracker is removed that way on
every load. So every open Gradio page asks the browser for 60 frames a second for as long as it
stays open. benchmarks/idle_page.py, headless Chromium on 2 AVX2 cores, the idle explorer page on
the demo: 2.17 CPU-s of Chromium in 15 s (898 frames asked for) without the script below, 0.68
with it (no frame; the rest is the run pickers' look at the disk every 3 s).

The script runs before Gradio's own (it is put at the top of the page's <head>) and sends the
tracker's counter callbacks to a 100 ms timer instead. The counter shows tenths of a second, so
a live one looks the same. A leaked one costs a timer tick and asks for no frame. Any other
callback goes to the browser's requestAnimationFrame as before.
"""

from __future__ import annotations

# The counter's callback as Gradio builds it, minified: ()=>{F(Pe,(performance.now()-w(de))/1e3),W&&ze()}
# (one statement block, elapsed seconds from performance.now()). tests/test_browser.py checks that
# the pinned Gradio's page asks for no frames while idle, so a Gradio that changes it is noticed.
IDLE_JS = r"""(() => {
  const raf = window.requestAnimationFrame.bind(window);
  const COUNTER = /^\(\)\s*=>\s*\{[^{}]*performance\.now\(\)[^{}]*\/\s*(1e3|1000)[^{}]*\}$/;
  window.requestAnimationFrame = (cb) => {
    if (typeof cb === "function" && COUNTER.test(Function.prototype.toString.call(cb))) {
      setTimeout(() => cb(performance.now()), 100);
      return 0;
    }
    return raf(cb);
  };
})();"""
TAG = b"<script>" + IDLE_JS.encode() + b"</script>"


class IdlePageScript:
    """ASGI middleware: puts TAG first in the <head> of every HTML page the app serves (the
    explorer page, at any path it is mounted under). Everything else (the API, files, the
    event streams) passes through untouched and unbuffered."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        chunks: list[bytes] = []

        async def send_page(message):
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                html = headers.get(b"content-type", b"").startswith(b"text/html")
                if not html or b"content-encoding" in headers:
                    await send(message)  # not a page: as it is
                else:
                    start = message  # a page: held until its body is whole
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks).replace(b"<head>", b"<head>" + TAG, 1)
            headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_page)
