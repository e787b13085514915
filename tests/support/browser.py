"""A real headless Chromium, driven over the DevTools protocol: what a person's browser shows of a
page, the console errors it logs, and screenshots. Chromium comes from the system's packages
(`apt-get install chromium`, done by .ci/run); tests skip with that reason when it is absent."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = "Chromium is not installed (apt-get install chromium; .ci/run installs it for CI)"


@dataclass
class Page:
    text: str
    errors: list[str]
    screenshot: bytes  # PNG of the viewport
    images: list[dict]  # each <img>: its alt, whether it loaded, its natural width
    shots: dict[str, bytes] = field(default_factory=dict)  # PNG of each element asked for, by selector


def render(url: str, *, width: int = 1100, height: int = 1400, elements: tuple[str, ...] = (), wait: float = 0.0,
           seconds: float = 60) -> Page:
    """Opens url in a fresh headless Chromium and reads back what it shows."""
    return asyncio.run(asyncio.wait_for(_render(url, width, height, elements, wait), seconds))


async def _render(url: str, width: int, height: int, elements: tuple[str, ...], wait: float) -> Page:
    import aiohttp

    # Chromium's helpers may still write to the profile for a moment after it is killed.
    with tempfile.TemporaryDirectory(prefix="overnight-chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        try:
            endpoint = await asyncio.to_thread(_devtools_endpoint, proc)
            port = re.search(r":(\d+)/", endpoint).group(1)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    targets = await resp.json(content_type=None)
                page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                async with http.ws_connect(page_ws, max_msg_size=0) as ws:
                    return await _Session(ws).read(url, elements, wait)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the browser and every helper it started
            except ProcessLookupError:
                pass
            proc.wait(10)


def _devtools_endpoint(proc: subprocess.Popen) -> str:
    found: list[str] = []
    done = threading.Event()

    def read():
        for line in proc.stderr:
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                found.append(match.group(1))
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(45) or not found:
        raise RuntimeError("Chromium did not start its DevTools endpoint")
    return found[0]


class _Session:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    async def call(self, method: str, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        await self.ws.send_str(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    async def until(self, method: str) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(json.loads((await self.ws.receive()).data))

    async def read(self, url: str, elements: tuple[str, ...], wait: float) -> Page:
        for domain in ("Page", "Runtime", "Log"):
            await self.call(f"{domain}.enable")
        await self.call("Page.navigate", url=url)
        await self.until("Page.loadEventFired")
        if wait:
            await asyncio.sleep(wait)
        await self.call("Runtime.evaluate", expression="1")  # drains the events logged meanwhile
        text = await self.value("document.body.innerText")
        images = await self.value("Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}))")
        shot = await self.call("Page.captureScreenshot", format="png")
        shots = {}
        for selector in elements:
            box = await self.value(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                                   f" return {{x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}}; }})()")
            clip = {**box, "scale": 1}
            shots[selector] = base64.b64decode((await self.call("Page.captureScreenshot", format="png", clip=clip,
                                                                captureBeyondViewport=True))["data"])
        return Page(text, self.errors(), base64.b64decode(shot["data"]), images, shots)

    async def value(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                out.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.append(params["entry"].get("text", ""))
        return out


def blank(png: bytes) -> bool:
    """True when an image is (nearly) one colour: nothing was drawn."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 16)
    if colours is None:  # more than 65,536 colours: certainly not blank
        return False
    background = max(colours)[0]
    drawn = image.width * image.height - background
    return drawn < 0.01 * image.width * image.height
