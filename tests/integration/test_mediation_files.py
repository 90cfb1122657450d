"""The mediation's files as jobs: a recording's audio through the real recogniser, the
transcript on the ticket page for the staff who may see the ticket, and nobody else."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from markupsafe import escape
from sqlalchemy import select

from callcenter.actions.mediation_files import TRANSCRIBE
from callcenter.actions.staff import log_in
from callcenter.bootstrap import build_runtime, close_runtime, create_app, start_runtime
from callcenter.clock import ManualClock
from callcenter.jobs.outbox import enqueue
from callcenter.runtime import Runtime
from callcenter.store.queries import insert_row
from callcenter.store.tables import audit_events, mediation_recordings, users
from ivr.tts import speak_to_wav
from tests.conftest import load_test_city, make_settings
from tests.helpers import settle
from tests.integration.test_mediations import case

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("espeak-ng", "sox", "ffmpeg")),
    reason="espeak-ng, sox and ffmpeg (Debian) are needed to make the recording",
)

SAID = "We agree that the leaking pipe in the kitchen will be repaired before the end of the month"


@pytest_asyncio.fixture
async def rt(
    tmp_path: Path, sqlite_url: str, clock: ManualClock, whisper_model: Path
) -> AsyncIterator[Runtime]:
    """Transcripts on, with Whisper as the configured recogniser for English."""
    settings = make_settings(
        tmp_path,
        sqlite_url,
        mediation={"transcribe": True},
        voice={"recognizers": {"en": "whisper"}, "whisper_model": str(whisper_model)},
    )
    runtime = build_runtime(settings, clock=clock, seed=11)
    await start_runtime(runtime, start_jobs=False)
    await load_test_city(runtime)
    yield runtime
    await close_runtime(runtime)


def joined_recording(folder: Path, path: Path) -> None:
    """What the join job leaves: a WebM with Opus audio (here: espeak-ng's voice)."""
    folder.mkdir(parents=True, exist_ok=True)
    speech = folder / "said.wav"
    speak_to_wav(SAID, "en", speech, rate=48000)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(speech), "-c:a", "libopus", str(path)],
        check=True,
    )


async def test_the_recording_is_transcribed_and_shown_on_the_ticket_to_its_staff(
    rt: Runtime, clock: ManualClock, tmp_path: Path
) -> None:
    ticket, dept, m = await case(rt, locale="en")
    relative = Path("recordings") / f"mediation-{m['id']}.webm"
    joined_recording(tmp_path / "speech", rt.settings.data_dir / relative)
    async with rt.transaction() as tx:
        now = tx.state["now"]
        rec = await insert_row(
            tx,
            mediation_recordings,
            {
                "mediation_id": m["id"], "ticket_id": ticket["id"], "state": "ready",
                "path": str(relative), "duration_seconds": 6.0, "created_at": now,
                "expires_at": now.replace(year=now.year + 1),
            },
        )  # fmt: skip
        await enqueue(tx, TRANSCRIBE, {"recording_id": rec.id}, key="transcribe-test", now=now)
    await settle(rt, clock, within=60)

    async with rt.db.read() as conn:
        rec = (await conn.execute(select(mediation_recordings))).one()
        audited = (
            await conn.execute(
                select(audit_events.c.action).where(audit_events.c.entity_id == m["id"])
            )
        ).scalars()
        own = (await conn.execute(select(users.c.username).where(users.c.id == dept.id))).scalar()
        other = (
            await conn.execute(
                select(users.c.username).where(
                    users.c.department_id.is_not(None),
                    users.c.department_id != ticket["department_id"],
                )
            )
        ).scalar()
    words = (rec.transcript or "").lower()
    assert all(w in words for w in ("leaking pipe", "end of the month")), words
    assert "mediation.transcribed" in list(audited)

    app = create_app(rt.settings, runtime=rt, start_jobs=False)
    async with TestClient(TestServer(app)) as client:
        for username, sees in ((own, True), ("agent1", True), (other, False)):
            session = await log_in(rt, username, "demo12345")
            page = await client.get(
                f"/ui/tickets/{ticket['number']}",
                headers={"Cookie": f"hotline_session={session.token}"},
            )
            body = await page.text()
            shown = str(escape(rec.transcript)) in body
            assert (page.status, shown) == ((200, True) if sees else (404, False))
            if sees:
                assert f"/api/mediations/{m['id']}/recordings/{rec.id}" in body
