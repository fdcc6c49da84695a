"""Outages for browser tests: a TCP proxy in front of a real server (tests/browser.py `Server`, which
can be stopped and started again on its port) that can answer 503, hold or delay what it relays."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import Future

from .browser import free_port

# ---------------------------------------------------------------- a proxy that can answer 503


class Proxy:
    """A TCP relay in front of the server, in its own thread. `mode`: "relay" forwards; "503" answers
    every request with 503 and drops the relayed connections; "hold" keeps connections open but
    relays nothing (a stalled network path) until relaying resumes. `lag_s` delays what the server
    sends by that long, in order (a congested path: everything arrives, late)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.mode = "relay"
        self.lag_s = 0.0
        self.refused_streams: list[float] = []  # when stream requests were answered 503
        self.loop = asyncio.new_event_loop()
        self.writers: set[asyncio.StreamWriter] = set()  # relayed connections, both ends
        self.opened: set[asyncio.StreamWriter] = set()  # every socket not yet closed for good
        self.released = asyncio.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Proxy:
        self.thread.start()
        self._call(self._serve()).result(timeout=10)
        return self

    def __exit__(self, *_: object) -> None:
        self._call(self._close()).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def _call(self, coro: object) -> Future[object]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def set_lag(self, seconds: float) -> None:
        self.loop.call_soon_threadsafe(setattr, self, "lag_s", seconds)

    def set_mode(self, mode: str) -> None:
        async def switch() -> None:
            self.mode = mode
            if mode == "503":
                for writer in list(self.writers):
                    writer.close()
            if mode == "hold":
                self.released.clear()
            else:
                self.released.set()

        self._call(switch()).result(timeout=10)

    async def _serve(self) -> None:
        self.released.set()
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _close(self) -> None:
        self.released.set()
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        # Connections still being piped: end them here, not by stopping their loop under them.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # A transport's close() only schedules the socket's close on the loop: wait for it, or
        # the loop stops first and the socket is collected unclosed (a ResourceWarning that
        # filterwarnings=error turns into a failure of whichever test is running).
        for writer in list(self.opened):
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in self.opened), return_exceptions=True)
        self.opened.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened.add(writer)
        try:
            await self._handle(reader, writer)
        finally:
            await _closed(writer)
            self.opened.discard(writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "503":
            head = await reader.readuntil(b"\r\n\r\n")
            if b"/live/stream" in head.split(b"\r\n", 1)[0]:
                self.refused_streams.append(time.monotonic())
            body = b"proxy: upstream unavailable"
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            return
        self.opened.add(up_writer)
        self.writers.update((writer, up_writer))
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer), self._pipe(up_reader, writer, downstream=True)
            )
        finally:
            self.writers.difference_update((writer, up_writer))
            await _closed(up_writer)
            self.opened.discard(up_writer)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        downstream: bool = False,
    ) -> None:
        # Reading and writing apart, so that a delayed chunk never delays the reading of the next.
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def send() -> None:
            while (item := await chunks.get()) is not None:
                due, chunk = item
                await asyncio.sleep(max(0.0, due - loop.time()))
                await self.released.wait()
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.create_task(send())
        try:
            while chunk := await reader.read(65536):
                chunks.put_nowait((loop.time() + (self.lag_s if downstream else 0.0), chunk))
        except (ConnectionError, OSError):
            pass
        finally:
            chunks.put_nowait(None)
            try:  # the delayed chunks still queued are sent before the close
                with contextlib.suppress(ConnectionError, OSError):
                    await sender
            finally:  # also when cancelled while waiting for them
                writer.close()


async def _closed(writer: asyncio.StreamWriter) -> None:
    """Close `writer` and wait until its socket is closed, even when cancelled meanwhile."""
    writer.close()
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.shield(writer.wait_closed())
