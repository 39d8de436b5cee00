"""The outbound guard (issue 11, API.md): a base URL set by anyone but a superuser must match
celaest.allowed_base_urls, and its host must resolve only to public addresses unless a
superuser allowlisted the address itself; refused at add_api_key/rotate_api_key (22023) and at
call time (failed, blocked_destination, nothing charged). Names resolve through
celaest.resolve_override (superuser only), so no /etc/hosts entry or DNS server is needed."""

import pytest
import psycopg2

from conftest import add_key, new_secret, rotate_key, rows, scalar

OVERRIDE = ("loop.guard.test=127.0.0.1, meta.guard.test=169.254.169.254, "
            "private.guard.test=10.1.2.3, rebind.guard.test=93.184.216.34")


@pytest.fixture
def service(db):
    """A connection of a service-level role (Supabase's service_role, not a superuser), with the
    test resolver and an allowlist that admits the test names (so the address check decides)."""
    conn = db.connect()
    for role, options in (("service_role", "NOLOGIN NOINHERIT"),):
        if not scalar(conn, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)):
            scalar(conn, "CREATE ROLE %s %s" % (role, options))
    scalar(conn, "SELECT celaest.grant_access('service_role', 'service')")
    scalar(conn, "SET celaest.resolve_override = %s", (OVERRIDE,))
    scalar(conn, "SET celaest.allowed_base_urls = %s",
           ("http://loop.guard.test:1, http://meta.guard.test, http://private.guard.test, "
            "http://rebind.guard.test:%d, %s" % (db.mock.port, db.mock.base),))
    scalar(conn, "SET ROLE service_role")
    yield conn
    scalar(conn, "RESET ROLE")


@pytest.mark.parametrize("url, kind", [
    ("http://loop.guard.test:1/v1", "loopback"),
    ("http://meta.guard.test/latest/meta-data", "link-local"),
    ("http://private.guard.test/v1", "private"),
    ("https://elsewhere.example/v1", "allowed_base_urls"),
    ("http://127.0.0.2:1/v1", "allowed_base_urls"),
])
def test_add_api_key_refuses_internal_or_unlisted_destinations(db, service, url, kind):
    before = scalar(service, "SELECT count(*) FROM celaest.ai_api_pool")
    with pytest.raises(psycopg2.Error) as exc:
        add_key(service, "openai", "guarded", new_secret("guard"), {"base_url": url})
    assert exc.value.pgcode == "22023"
    assert kind in exc.value.pgerror
    assert scalar(service, "SELECT count(*) FROM celaest.ai_api_pool") == before


def test_an_allowlisted_address_is_reachable(db, mock, service):
    # The mock listens on 127.0.0.1: allowlisted by that very literal, it may be reached.
    key_id = add_key(service, "groq", "allowlisted", new_secret("groq-guard"),
                     {"base_url": db.mock.url("groq")})
    assert key_id


def test_call_time_rebinding_is_blocked_and_not_charged(db, mock, service):
    """The name passed the check when the key was added; at call time it resolves inward: the
    call fails with blocked_destination, nothing reaches a provider, nothing is charged."""
    url = "http://rebind.guard.test:%d/groq/openai/v1" % db.mock.port
    scalar(service, "RESET ROLE")
    scalar(service, "UPDATE celaest.ai_api_pool SET is_active = false WHERE provider = 'groq'")
    scalar(service, "SET ROLE service_role")
    key_id = add_key(service, "groq", "rebinding", new_secret("groq-rebind"), {"base_url": url})
    scalar(service, "RESET ROLE")
    scalar(service, "SET celaest.resolve_override = %s",
           (OVERRIDE.replace("rebind.guard.test=93.184.216.34", "rebind.guard.test=127.0.0.1"),))
    used = db.license_used(service)
    result = db.ai_chat(service, [{"role": "user", "content": "rebound"}], None, {"provider": "groq"})
    assert result["status"] == "failed"
    assert result["error_code"] == "blocked_destination"
    assert "loopback" in result["error_message"]
    assert mock.chat_requests("groq") == []
    assert db.license_used(service) == used
    # The secret was not sent, so the key keeps its health.
    assert db.key(service, key_id)["consecutive_failures"] == 0
    # rotate_api_key re-checks the destination for a non-superuser.
    scalar(service, "SET ROLE service_role")
    with pytest.raises(psycopg2.Error) as exc:
        rotate_key(service, key_id, new_secret("groq-rebind-2"))
    assert exc.value.pgcode == "22023"


def test_a_superusers_base_url_is_trusted_and_marked(db, conn):
    key_id = add_key(conn, "openai", "by-superuser", new_secret("openai-su"),
                     {"base_url": "http://127.0.0.1:1/openai/v1"})
    assert db.key(conn, key_id)["metadata"] == {"base_url": "http://127.0.0.1:1/openai/v1",
                                               "base_url_by_superuser": True}
    scalar(conn, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s", (key_id,))


def test_the_allowlist_setting_is_superuser_only_and_defaults_to_the_public_endpoints(db, conn):
    setting = rows(conn, "SELECT context, boot_val FROM pg_settings WHERE name = 'celaest.allowed_base_urls'")[0]
    assert setting["context"] == "superuser"
    assert "https://api.openai.com/v1" in setting["boot_val"]
    assert "https://api.anthropic.com" in setting["boot_val"]
    assert rows(conn, "SELECT context FROM pg_settings WHERE name = 'celaest.resolve_override'")[0]["context"] == "superuser"
