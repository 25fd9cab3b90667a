"""Rotating the key-encryption key: payloads stay readable, the old KEK unwraps nothing."""

from __future__ import annotations

import dataclasses
import stat

import pytest
from sqlalchemy import select

from service.core import Service
from service.db.tables import DataKeyRow, RecordRow
from service.erasure import crypto, vault
from service.erasure.kek import load_vault
from service.settings import SettingsError
from tests.service.conftest import synthetic_dataset


def _payloads(svc: Service) -> dict[str, dict[str, object]]:
    with svc.db.read() as s:
        rows = s.execute(select(RecordRow.record_id, RecordRow.payload)).all()
        return {rid: vault.open_payload(s, p) for rid, p in rows}


def test_rotation_rewraps_every_data_key(service: Service) -> None:
    service.import_dataset("synthetic", synthetic_dataset(30, n_subjects=4))
    before = _payloads(service)
    old = service.settings.kek()
    old_id, new_id, n = service.rotate_master_key()
    assert old_id == crypto.kek_id(old) and new_id != old_id
    with service.db.read() as s:
        rows = list(s.scalars(select(DataKeyRow)))
    assert n == len(rows) > 0 and {r.kek_id for r in rows} == {new_id}
    for r in rows:
        with pytest.raises(crypto.SealError):
            crypto.unwrap(old, r.id, r.wrapped)
    kek_file = service.settings.kek_file
    assert stat.S_IMODE(kek_file.stat().st_mode) == 0o600
    assert not kek_file.with_name(kek_file.name + ".next").exists()
    assert service.settings.kek() != old
    # This process and a newly started one read every payload as before.
    assert _payloads(service) == before
    again = Service.open(service.settings)
    try:
        assert _payloads(again) == before
    finally:
        again.db.dispose()
    assert service.rewrap_data_keys() == 0, "nothing left under another KEK"


def test_a_rotation_cut_short_still_unwraps(service: Service) -> None:
    """A crash after the re-wrap committed but before the old file was replaced leaves
    ``master.key.next``: the vault unwraps with it."""
    service.import_dataset("synthetic", synthetic_dataset(12, n_subjects=2))
    before = _payloads(service)
    new = bytes(range(32))
    pending = service.settings.kek_file.with_name("master.key.next")
    pending.write_text(new.hex())
    with service.db.write() as s:
        vault.rewrap(s, vault.Vault(new, (service.settings.kek(),)))
    restarted = Service.open(service.settings)
    try:
        assert _payloads(restarted) == before
        assert load_vault(service.settings).previous == (new,)
    finally:
        restarted.db.dispose()


def test_an_environment_kek_is_rotated_through_the_environment(service: Service) -> None:
    service.import_dataset("synthetic", synthetic_dataset(12, n_subjects=2))
    before = _payloads(service)
    old_hex = service.settings.kek().hex()
    env = dataclasses.replace(service.settings, master_key=old_hex)
    with pytest.raises(SettingsError, match="UNLEARN_MASTER_KEY_PREVIOUS"):
        dataclasses.replace(service, settings=env).rotate_master_key()
    new_hex = "ab" * 32
    moved = dataclasses.replace(
        service.settings, master_key=new_hex, master_key_previous=(old_hex,)
    )
    svc = Service.open(moved)
    try:
        assert svc.rewrap_data_keys() > 0
        assert _payloads(svc) == before
    finally:
        svc.db.dispose()
    only_new = Service.open(dataclasses.replace(moved, master_key_previous=()))
    try:
        assert _payloads(only_new) == before, "after the re-wrap the new KEK alone suffices"
    finally:
        only_new.db.dispose()
