"""The embedded Janus: Debian's ``janus`` started beside the hotline, restarted when it dies.

The configuration is written from the settings at every start (free ports and
fresh secrets unless the settings fix them); Janus's own log goes to
``<data_dir>/janus/janus.log``. A crash is noticed at once (the process's exit),
reported through the :class:`~callcenter.media.service.MediaService`, and Janus
is started again after ``media.restart_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from callcenter.config import MediaSettings
from callcenter.media.janus_config import JanusConfig, write_config

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def embedded_config(settings: MediaSettings) -> JanusConfig:
    """Resolve the settings into one concrete configuration (ports, secrets)."""
    return JanusConfig(
        http_port=settings.http_port or free_port(),
        ws_port=settings.ws_port or free_port(),
        admin_port=settings.admin_port or free_port(),
        admin_secret=settings.admin_secret or secrets.token_urlsafe(24),
        admin_key=settings.admin_key or secrets.token_urlsafe(24),
        rtp_ports=settings.rtp_ports,
        nat_1_1=settings.nat_1_1,
        ice_enforce_list=settings.ice_enforce_list,
        ice_ignore_list=settings.ice_ignore_list,
        sip_local_ip=settings.sip_local_ip,
        sip_rtp_ports=settings.sip_rtp_ports,
    )


class JanusProcess:
    """Starts Janus, watches it, and starts it again when it exits unasked."""

    def __init__(
        self,
        settings: MediaSettings,
        work_dir: Path,
        *,
        on_exit: Callable[[int | None], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.work_dir = work_dir
        self.config = embedded_config(settings)
        self.on_exit = on_exit
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def binary(self) -> str:
        found = shutil.which(self.settings.binary)
        if found is None:
            raise FileNotFoundError(
                f"the media server {self.settings.binary!r} is not installed: run "
                "scripts/run-hotline.sh (it installs Debian's janus), or set media.janus = "
                '"external" or "off"'
            )
        return found

    async def start(self) -> None:
        conf_dir = self.work_dir / "conf"
        write_config(self.config, conf_dir)
        logfile = (self.work_dir / "janus.log").open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary(),
                "--configs-folder",
                str(conf_dir),
                "--config",
                str(conf_dir / "janus.jcfg"),
                "--disable-colors",
                "--debug-timestamps",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=logfile,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C to the hotline reaches Janus through stop()
            )
        finally:
            logfile.close()
        self.starts += 1
        log.info(
            "media server started (pid %s, admin port %s)", self.proc.pid, self.config.admin_port
        )
        self._watch = asyncio.create_task(self._wait(self.proc))

    async def _wait(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self._stopping:
            return
        log.error("media server (pid %s) exited with %s; starting it again", proc.pid, code)
        if self.on_exit is not None:
            await self.on_exit(code)
        await asyncio.sleep(self.settings.restart_seconds)
        if not self._stopping:
            await self.start()

    async def stop(self) -> None:
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
