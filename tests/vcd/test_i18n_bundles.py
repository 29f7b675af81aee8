"""The runtime registers each service with the localization bundle built from its catalogs."""

from __future__ import annotations

from tests.vcd.fake_vcd import HOST, PASSWORD
from vcdext.app import _register_with_vcd, create_runtime
from vcdext.settings import AmqpSettings, PluginsSettings, Settings, VcdSettings
from vcdext.vcloud.bundle import read_bundle


def test_vcdext_run_uploads_hellos_bundle_once(fake, monkeypatch):
    monkeypatch.setattr("vcdext.vcd.client.new_session", fake.session)
    settings = Settings(
        amqp=AmqpSettings(exchange="ext-x"),
        plugins=PluginsSettings(enabled=("hello",)),
        vcd=VcdSettings(url=HOST, username="administrator", password=PASSWORD),
    )
    runtime = create_runtime(settings)
    assert _register_with_vcd(runtime)
    ((_, zipped),) = fake.bundles
    bundle = read_bundle(zipped)
    assert sorted(bundle) == ["de_DE", "en_US", "fr_FR"]
    assert bundle["fr_FR"]["RIGHT_VIEW_ORG_GREETING"] == (
        "Voir le message d\u2019accueil de l\u2019organisation"
    )
    assert bundle["en_US"]["io.vcdext.hello"] == "Hello World Service"
    assert _register_with_vcd(create_runtime(settings))
    assert len(fake.bundles) == 1  # the same catalogs: nothing uploaded again
