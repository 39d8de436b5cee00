"""The hot path's cached copies (src/sql/78_cache_validity.sql) never outlive a committed change.

A backend keeps the model catalogue, the key pool's configuration and health, and each
user's organization between calls. These tests make the copies in one session, change the
rows from another, and expect the very next call of the first session to follow the
change: a model deactivated or added, a key disabled or rotated, a user moved to another
organization. (License terms: test_licensing_concurrency.py.)
"""
import uuid

import psycopg2
import pytest

from conftest import add_key, new_secret, rotate_key, scalar


def say(text):
    return [{"role": "user", "content": "%s #%s" % (text, uuid.uuid4().hex[:8])}]


@pytest.fixture
def caller(db):
    """The session whose backend keeps the copies (made by its first call)."""
    conn = db.connect()
    result = db.ai_chat(conn, say("warm the copies"), None, {"provider": "openai"})
    assert result["status"] == "completed", result
    return conn


@pytest.fixture
def other(db):
    return db.connect(user=False)


def test_a_model_added_or_deactivated_elsewhere_is_seen_at_once(db, mock, caller, other):
    first = db.models["openai"]["model_id"]
    new_model = "gpt-cache-%s" % uuid.uuid4().hex[:6]
    new_id = db.add_model(other, "openai", new_model, 1000)
    scalar(other, "UPDATE celaest.ai_models SET is_default = false WHERE provider = 'openai'")
    result = db.ai_chat(caller, say("new model first"), None, {"provider": "openai"})
    assert result["model"] == new_model, result

    scalar(other, "UPDATE celaest.ai_models SET is_active = false WHERE id = %s", (new_id,))
    result = db.ai_chat(caller, say("back to the seeded model"), None, {"provider": "openai"})
    assert result["model"] == first, result
    with pytest.raises(psycopg2.Error) as refused:
        db.ai_chat(caller, say("named inactive"), new_model, {"provider": "openai"})
    assert refused.value.pgcode == "LC020"
    caller.rollback()


def test_a_key_disabled_or_rotated_elsewhere_is_seen_at_once(db, mock, caller, other):
    key_id, secret = db.only_key(other, "openai", tag="cache")
    mock.reset()
    result = db.ai_chat(caller, say("the new key"), None, {"provider": "openai"})
    assert result["status"] == "completed", result
    assert scalar(caller, "SELECT api_key_id FROM celaest.processed_tasks WHERE id = %s",
                  (result["task_id"],)) == key_id
    assert mock.chat_requests("openai")[-1]["headers"]["authorization"] == "Bearer " + secret

    rotated = new_secret("openai-cache-rotated")
    rotate_key(other, key_id, rotated)
    db.ai_chat(caller, say("the rotated secret"), None, {"provider": "openai"})
    assert mock.chat_requests("openai")[-1]["headers"]["authorization"] == "Bearer " + rotated

    scalar(other, "UPDATE celaest.ai_api_pool SET is_healthy = false WHERE id = %s", (key_id,))
    with pytest.raises(psycopg2.Error) as refused:
        db.ai_chat(caller, say("no healthy key"), None, {"provider": "openai"})
    assert refused.value.pgcode == "LC020"
    caller.rollback()


def test_a_user_moved_to_another_organization_is_charged_there(db, mock, caller, other):
    org = str(uuid.uuid4())
    scalar(other, "INSERT INTO celaest.organizations (id, name, slug) VALUES (%s, 'Moved', %s) RETURNING id",
           (org, "moved-" + org[:8]))
    try:
        scalar(other, "UPDATE celaest.users_profile SET organization_id = %s WHERE id = %s", (org, db.user_id))
        with pytest.raises(psycopg2.Error) as refused:
            db.ai_chat(caller, say("no license there"), None, {"provider": "openai"})
        assert refused.value.pgcode == "LC001"
        caller.rollback()
    finally:
        scalar(other, "UPDATE celaest.users_profile SET organization_id = %s WHERE id = %s", (db.org_id, db.user_id))
    result = db.ai_chat(caller, say("home again"), None, {"provider": "openai"})
    assert result["status"] == "completed", result
