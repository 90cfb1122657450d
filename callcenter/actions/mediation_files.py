"""The files a mediation leaves: its recording and its agreement (调解协议书). Jobs.

- :func:`join_recording`: Janus records each participant's audio and video as
  ``.mjr`` files (one pair per stretch of recording: recording stops while someone
  present has not consented). ``janus-pp-rec`` turns each into Opus or WebM, reading
  the time it started from the header; ffmpeg puts every video in a grid and mixes
  every audio, each at its own offset, into one WebM the length of the recorded
  session. The file is attached to the ticket (``mediation_recordings``) with its
  duration as ffprobe measures it, and transcribed when a transcriber is configured.
- :func:`make_agreement`: the outcome and agreement text as a PDF in both languages
  (reportlab, with its built-in CJK font, nothing to download), then a link to it is
  sent to each party in their language.
- :func:`expire_recordings`: deletes recordings past their retention, audited.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import select, update

from callcenter.actions import audit
from callcenter.actions.mediations import (
    AGREEMENT,
    JOIN_RECORDING,
    link_url,
    load_parties,
    make_link,
    recording_dir,
    tell_party,
)
from callcenter.domain.workflow import SYSTEM
from callcenter.jobs.outbox import Job, JobOutcome, enqueue
from callcenter.runtime import Runtime
from callcenter.store.queries import row_by_id
from callcenter.store.tables import mediation_parties, mediation_recordings, mediations, tickets

log = logging.getLogger(__name__)


class MediaToolError(RuntimeError):
    """janus-pp-rec, ffmpeg or ffprobe failed; the job is tried again."""


# (path of an 8 kHz mono 16-bit WAV, language) -> transcript; the composition root sets it from
# the voice settings' recognisers (the core imports no speech library itself)
Transcriber = Callable[[Path, str], Awaitable[str | None]]
TRANSCRIBER = "mediation_transcriber"
EXPIRE = "mediation.expire_recordings"
TRANSCRIBE = "mediation.transcribe"


async def _run(*args: str, limit: float = 600) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise MediaToolError(f"{args[0]} took longer than {limit}s") from None
    if proc.returncode != 0:
        raise MediaToolError(f"{args[0]} failed ({proc.returncode}): {err.decode()[-400:]}")
    return out.decode()


async def track_info(path: Path) -> dict[str, Any]:
    """The .mjr header: kind (``a``/``v``), codec, and when the track started (µs)."""
    text = await _run("janus-pp-rec", "--json", str(path), limit=60)
    start = text.find("{")
    info: dict[str, Any] = json.loads(text[start:]) if start >= 0 else {}
    return info


async def probe_duration(path: Path) -> tuple[float, list[str]]:
    """(duration in seconds, kinds of the streams) as ffprobe reads them."""
    text = await _run(
        "ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type",
        "-of", "json", str(path), limit=60,
    )  # fmt: skip
    data = json.loads(text)
    kinds = [s.get("codec_type", "") for s in data.get("streams", [])]
    return float(data.get("format", {}).get("duration") or 0), kinds


def _grid(n: int, width: int = 640, height: int = 480) -> tuple[int, int, list[tuple[int, int]]]:
    cols = 1 if n <= 1 else 2 if n <= 4 else 3
    rows = max(1, -(-n // cols))
    w, h = width // cols, height // rows
    return (
        w - w % 2,
        h - h % 2,
        [((i % cols) * (w - w % 2), (i // cols) * (h - h % 2)) for i in range(n)],
    )


async def join_tracks(folder: Path, out: Path, *, until: datetime | None = None) -> dict[str, Any]:
    """Every ``.mjr`` in ``folder`` into one WebM; returns what was joined."""
    work = folder / "tracks"
    work.mkdir(exist_ok=True)
    tracks: list[dict[str, Any]] = []
    for mjr in sorted(await asyncio.to_thread(lambda: list(folder.glob("*.mjr")))):
        info = await track_info(mjr)
        kind = "video" if info.get("t") == "v" else "audio"
        target = work / (mjr.stem + (".webm" if kind == "video" else ".opus"))
        await _run("janus-pp-rec", str(mjr), str(target))
        if not target.exists() or target.stat().st_size < 100:
            continue
        start = int(info.get("s") or 0)
        # one participant is one feed: the name carries it (…-user-<feed>-…)
        feed = mjr.name.split("-user-")[1].split("-")[0] if "-user-" in mjr.name else mjr.stem
        tracks.append({"file": str(target), "kind": kind, "start_us": start, "feed": feed})
    # a telephone caller's audio, kept by the phone bridge (callcenter/media/phonebridge.py):
    # phone-<feed>-<start µs>.ulaw, raw G.711 at 8 kHz
    for raw in sorted(await asyncio.to_thread(lambda: list(folder.glob("phone-*.ulaw")))):
        _, feed, began = raw.stem.split("-")
        target = work / (raw.stem + ".opus")
        await _run(
            "ffmpeg", "-loglevel", "error", "-y", "-f", "mulaw", "-ar", "8000", "-ac", "1",
            "-i", str(raw), str(target),
        )  # fmt: skip
        if target.exists() and target.stat().st_size >= 100:
            tracks.append({"file": str(target), "kind": "audio", "start_us": int(began),
                           "feed": feed})  # fmt: skip
    if not tracks:
        raise MediaToolError("no recorded track")
    t0 = min(t["start_us"] for t in tracks)
    ends: list[float] = []
    for t in tracks:
        duration, _ = await probe_duration(Path(t["file"]))
        t["offset"] = (t["start_us"] - t0) / 1e6
        ends.append(t["offset"] + duration)
    total = max(ends)
    if until is not None:
        total = max(total, min(total + 5, (until.timestamp() * 1e6 - t0) / 1e6))
    feeds = sorted({t["feed"] for t in tracks})
    w, h, cells = _grid(len(feeds))
    args = ["ffmpeg", "-loglevel", "error", "-y"]
    filters: list[str] = [
        f"color=c=black:s={w * (2 if len(feeds) > 1 else 1)}x{h}:r=15:d={total:.3f}[base0]"
    ]
    if len(feeds) > 1:
        cols = 1 if len(feeds) <= 1 else 2 if len(feeds) <= 4 else 3
        rows = max(1, -(-len(feeds) // cols))
        filters[0] = f"color=c=black:s={w * cols}x{h * rows}:r=15:d={total:.3f}[base0]"
    audio_labels: list[str] = []
    base = "base0"
    for index, t in enumerate(tracks):
        args += ["-i", t["file"]]
        if t["kind"] == "video":
            x, y = cells[feeds.index(t["feed"])]
            filters.append(
                f"[{index}:v]setpts=PTS-STARTPTS+{t['offset']:.3f}/TB,scale={w}:{h}[v{index}]"
            )
            filters.append(
                f"[{base}][v{index}]overlay=x={x}:y={y}:eof_action=pass[base{index + 1}]"
            )
            base = f"base{index + 1}"
        else:
            delay = int(t["offset"] * 1000)
            filters.append(f"[{index}:a]aresample=48000,adelay={delay}:all=1[a{index}]")
            audio_labels.append(f"[a{index}]")
    if audio_labels:
        filters.append(
            "".join(audio_labels)
            + f"amix=inputs={len(audio_labels)}:normalize=0:duration=longest,apad[aout]"
        )
    filters.append(f"[{base}]format=yuv420p[vout]")  # overlay leaves an alpha plane
    args += ["-filter_complex", ";".join(filters), "-map", "[vout]"]
    if audio_labels:
        args += ["-map", "[aout]", "-c:a", "libopus", "-b:a", "48k"]
    args += [
        "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "400k",
        "-t", f"{total:.3f}", str(out),
    ]  # fmt: skip
    await _run(*args, limit=max(120, total * 4))
    return {"tracks": [{k: v for k, v in t.items() if k != "file"} for t in tracks]}


async def join_recording(rt: Runtime, job: Job) -> JobOutcome:
    """Job: join a concluded session's tracks, attach the file to the ticket."""

    mediation_id = int(job.payload["mediation_id"])
    async with rt.db.read() as conn:
        m = await row_by_id(conn, mediations, mediation_id)
        rec = (
            await conn.execute(
                select(mediation_recordings).where(
                    mediation_recordings.c.mediation_id == mediation_id
                )
            )
        ).first()
    if m is None or rec is None or rec.state != "pending":
        return {"skipped": "nothing to join"}
    folder = recording_dir(rt, mediation_id)
    relative = Path("recordings") / f"mediation-{mediation_id}.webm"
    out = rt.settings.data_dir / relative
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        joined = await join_tracks(folder, out, until=m.ended_at)
        duration, kinds = await probe_duration(out)
    except MediaToolError as exc:
        if job.attempts + 1 < job.max_attempts:
            raise
        async with rt.transaction() as tx:
            await tx.execute(
                update(mediation_recordings)
                .where(mediation_recordings.c.id == rec.id)
                .values(state="failed", error=str(exc)[:2000])
            )
            await audit.record(
                tx, actor=SYSTEM, entity_type="mediation", entity_id=mediation_id,
                action="mediation.recording_failed", details={"error": str(exc)[:500]},
            )  # fmt: skip
        return {"failed": str(exc)[:200]}
    async with rt.transaction() as tx:
        await tx.execute(
            update(mediation_recordings)
            .where(mediation_recordings.c.id == rec.id)
            .values(
                state="ready",
                path=str(relative),
                duration_seconds=round(duration, 2),
                size=out.stat().st_size,
                tracks={**joined, "streams": kinds},
            )
        )
        await audit.record(
            tx, actor=SYSTEM, entity_type="ticket", entity_id=m.ticket_id,
            action="mediation.recording_attached",
            after={"mediation_id": mediation_id, "path": str(relative), "duration": duration},
        )  # fmt: skip
        await enqueue(
            tx, EXPIRE, {}, key=f"mediation:{mediation_id}:expire", now=tx.state["now"],
            run_at=rec.expires_at,
        )  # fmt: skip
        if rt.extras.get(TRANSCRIBER) is not None:
            await enqueue(
                tx, TRANSCRIBE, {"recording_id": rec.id},
                key=f"mediation:{mediation_id}:transcribe", now=tx.state["now"], max_attempts=2,
            )  # fmt: skip
    shutil.rmtree(folder / "tracks", ignore_errors=True)
    for track in [*folder.glob("*.mjr"), *folder.glob("phone-*.ulaw")]:
        track.unlink()
    return {"duration": duration, "streams": kinds}


async def transcribe_recording(rt: Runtime, job: Job) -> JobOutcome:
    """Job: the recording's audio through the configured recogniser, kept with it."""
    transcriber: Transcriber | None = rt.extras.get(TRANSCRIBER)
    async with rt.db.read() as conn:
        rec = await row_by_id(conn, mediation_recordings, int(job.payload["recording_id"]))
        ticket = await row_by_id(conn, tickets, rec.ticket_id) if rec else None
    if transcriber is None or rec is None or rec.state != "ready" or ticket is None:
        return {"skipped": "no transcriber or no recording"}
    source = rt.settings.data_dir / rec.path
    wav = source.with_suffix(".8k.wav")
    await _run(
        "ffmpeg",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(source),
        "-ac",
        "1",
        "-ar",
        "8000",  # the recognisers take telephone audio (ivr/stt.py)
        str(wav),
    )
    try:
        text = await transcriber(wav, ticket.locale)
    finally:
        wav.unlink(missing_ok=True)
    async with rt.transaction() as tx:
        await tx.execute(
            update(mediation_recordings)
            .where(mediation_recordings.c.id == rec.id)
            .values(transcript=text or "")
        )
        await audit.record(
            tx, actor=SYSTEM, entity_type="mediation", entity_id=rec.mediation_id,
            action="mediation.transcribed", details={"characters": len(text or "")},
        )  # fmt: skip
    return {"characters": len(text or "")}


async def expire_recordings(rt: Runtime, job: Job) -> JobOutcome:
    """Job, due when a recording's retention ends: delete every recording past its own."""
    now = rt.clock.now()
    async with rt.transaction() as tx:
        rows = (
            await tx.execute(
                select(mediation_recordings).where(
                    mediation_recordings.c.expires_at <= now,
                    mediation_recordings.c.state.in_(["ready", "failed", "pending"]),
                )
            )
        ).all()
        for rec in rows:
            if rec.path:
                (rt.settings.data_dir / rec.path).unlink(missing_ok=True)
            await tx.execute(
                update(mediation_recordings)
                .where(mediation_recordings.c.id == rec.id)
                .values(state="deleted", deleted_at=now, path=None, transcript=None)
            )
            await audit.record(
                tx, actor=SYSTEM, entity_type="ticket", entity_id=rec.ticket_id,
                action="mediation.recording_deleted",
                before={"path": rec.path, "duration": rec.duration_seconds},
                details={"mediation_id": rec.mediation_id, "expired": rec.expires_at.isoformat()},
            )  # fmt: skip
    return {"deleted": len(rows)}


# ---------------------------------------------------------------- the agreement


# embedded, so that every reader shows the Chinese text (a phone's viewer has no CJK
# fonts of its own); Debian's fonts-wqy-microhei, installed with the media tools
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def _cjk_font(pdfmetrics: Any, cid_font: Any) -> str:
    """The font the document is set in: WenQuanYi Micro Hei embedded (subset), or, where
    it is missing, reportlab's built-in STSong-Light, which readers must supply."""
    names = pdfmetrics.getRegisteredFontNames()
    if CJK_FONT.is_file():
        if "WenQuanYi" not in names:
            from reportlab.pdfbase.ttfonts import TTFont

            pdfmetrics.registerFont(TTFont("WenQuanYi", str(CJK_FONT), subfontIndex=0))
        return "WenQuanYi"
    log.warning("%s is missing: the agreement's Chinese font is not embedded", CJK_FONT)
    if "STSong-Light" not in names:
        pdfmetrics.registerFont(cid_font("STSong-Light"))
    return "STSong-Light"


def agreement_pdf(rt: Runtime, out: Path, case: dict[str, Any]) -> None:
    """The document, both languages on one page each, from the catalog's texts."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table

    font = _cjk_font(pdfmetrics, UnicodeCIDFont)
    body = ParagraphStyle("body", fontName=font, fontSize=11, leading=17, wordWrap="CJK")
    title = ParagraphStyle("title", parent=body, fontSize=18, leading=26, alignment=1)
    story: list[Any] = []
    for n, locale in enumerate(("zh-CN", "en")):

        def t(key: str, locale: str = locale, **params: Any) -> str:
            return escape(rt.text(f"mediation.doc.{key}", locale, **params))

        if n:
            story.append(PageBreak())
        story += [Paragraph(t("title"), title), Spacer(1, 6 * mm)]
        story.append(Paragraph(t("case", number=case["number"], time=case["time"]), body))
        rows = [[t("party"), t("role"), t("phone")]] + [
            [
                escape(p["name"]),
                escape(rt.catalog.label("party_role", p["role"], locale)),
                escape(p["phone"]),
            ]
            for p in case["parties"]
        ]
        story += [
            Spacer(1, 4 * mm),
            Table(rows, style=[("FONT", (0, 0), (-1, -1), font, 10)]),
        ]
        story += [Spacer(1, 4 * mm), Paragraph(t("mediator", name=case["mediator"]), body)]
        story.append(
            Paragraph(
                t("outcome", outcome=rt.catalog.label("outcome", case["outcome"], locale)), body
            )
        )
        story.append(Spacer(1, 4 * mm))
        text = case["agreement"] or rt.text("mediation.doc.no_text", locale)
        for line in text.splitlines() or [""]:
            story.append(Paragraph(escape(line), body))
        story += [Spacer(1, 10 * mm), Paragraph(t("signatures"), body)]
        story.append(
            Paragraph(t("issued", time=case["issued"], hotline=rt.settings.hotline_number), body)
        )
    doc = SimpleDocTemplate(
        str(out),
        pagesize=A4,
        title=rt.text("mediation.doc.title", "en"),
        author=rt.settings.hotline_number,
    )
    doc.build(story)


async def make_agreement(rt: Runtime, job: Job) -> JobOutcome:
    """Job: the agreement document of a concluded mediation, and a link to each party."""

    mediation_id = int(job.payload["mediation_id"])
    async with rt.db.read() as conn:
        m = await row_by_id(conn, mediations, mediation_id)
        ticket = await row_by_id(conn, tickets, m.ticket_id) if m else None
        parties = await load_parties(conn, mediation_id)
        from callcenter.store.tables import users

        mediator = await row_by_id(conn, users, m.mediator_id) if m and m.mediator_id else None
    if m is None or ticket is None or m.state != "concluded":
        return {"skipped": "not concluded"}
    relative = Path("documents") / f"mediation-{mediation_id}-agreement.pdf"
    out = rt.settings.data_dir / relative
    out.parent.mkdir(parents=True, exist_ok=True)
    case = {
        "number": ticket.number,
        "time": rt.local_text(m.started_at or m.scheduled_at),
        "issued": rt.local_text(m.ended_at),
        "outcome": m.outcome,
        "agreement": m.agreement_text or "",
        "mediator": mediator.display_name if mediator else "",
        "parties": [{"name": p.name, "role": p.role, "phone": p.phone} for p in parties],
    }
    await asyncio.to_thread(agreement_pdf, rt, out, case)
    async with rt.transaction() as tx:
        await tx.execute(
            update(mediations)
            .where(mediations.c.id == mediation_id)
            .values(agreement_path=str(relative))
        )
        await audit.record(
            tx, actor=SYSTEM, entity_type="ticket", entity_id=ticket.id,
            action="mediation.agreement_made",
            after={"mediation_id": mediation_id, "path": str(relative)},
        )  # fmt: skip
        sent = 0
        for party in parties:
            if party.declined_at is None:
                url = link_url(rt, make_link(rt, party.id, party.nonce, "doc"), "doc")
                sent += await tell_party(tx, rt, m, party, "agreement", url=url, dedupe=job.key)
    return {"document": str(relative), "messages": sent}


async def agreement_for(rt: Runtime, party_id: int) -> Path | None:
    async with rt.db.read() as conn:
        party = await row_by_id(conn, mediation_parties, party_id)
        m = await row_by_id(conn, mediations, party.mediation_id) if party else None
    if m is None or not m.agreement_path:
        return None
    return rt.settings.data_dir / m.agreement_path


def register_jobs(registry: Any) -> None:
    """The jobs that make the mediation's files: recordings joined, transcribed and
    expired, the agreement's PDF."""
    registry.register(JOIN_RECORDING, join_recording)
    registry.register(AGREEMENT, make_agreement)
    registry.register(EXPIRE, expire_recordings)
    registry.register(TRANSCRIBE, transcribe_recording)
