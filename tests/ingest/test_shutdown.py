"""Stopping the daemon is bounded even when the database stops answering mid-upload."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from paceline.ingest.daemon import DaemonConfig
from paceline.ingest.spool import Spool
from paceline.ingest.uploader import Uploader, UploadReport
from paceline.store.connection import KEEPALIVE
from tests.ingest.conftest import (
    FAST_DB_BACKOFF,
    RigFactory,
    assert_stored_exactly_what_was_emitted,
    guarded,
)
from tests.ingest.test_daemon import _heart_rates_at_least, _until


def test_the_uploader_connects_with_tcp_keepalives(db_dsn: str, tmp_path: Path) -> None:
    with Spool.open(tmp_path / "spool.sqlite") as spool:
        uploader = Uploader(spool, db_dsn)
        try:
            parameters = uploader._connection().info.get_parameters()
        finally:
            uploader.close()
    assert {k: parameters.get(k) for k in KEEPALIVE} == {k: str(v) for k, v in KEEPALIVE.items()}


async def test_a_hung_upload_does_not_hold_up_shutdown_and_its_rows_stay_spooled(
    make_rig: RigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_rig()
    strap = rig.wearable()
    answer = threading.Event()  # a database behind a dead network never answers

    def hung(self: Uploader) -> UploadReport | None:
        answer.wait()
        return None

    monkeypatch.setattr(Uploader, "upload_once", hung)
    config = DaemonConfig(
        upload_backoff=FAST_DB_BACKOFF, drain_on_stop_s=0.05, uploader_stop_s=0.05
    )
    daemon = rig.daemon(config)
    try:
        task = asyncio.create_task(daemon.run(signals=False))
        await _until(strap, _heart_rates_at_least(20))
        daemon.stop()
        await guarded(task)
    finally:
        answer.set()
    monkeypatch.undo()
    with Spool.open(rig.spool_path) as spool:
        assert spool.status().pending_rows > 0
        Uploader(spool, rig.dsn).drain()
    assert_stored_exactly_what_was_emitted(rig)
