"""Configuration, read once from the environment.

Every setting has one documented default here; `.env.example` lists them for the admin.
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return _number(name, value, int) if value else default


def _float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return _number(name, value, float) if value else default


def _number(name: str, value: str, kind: type) -> int | float:
    """The setting's number, or a start-up error naming the variable (int()'s own message names
    only the value, and the person starting the server must find which of dozens it was)."""
    try:
        return kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name} must be {what}, not {value!r}") from None


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default


def _int_list(name: str, default: int) -> list[int]:
    """"4" or "4,2": one number for all, or one for each item of a list setting."""
    values = [v.strip() for v in os.environ.get(name, "").split(",") if v.strip()]
    return [_number(name, v, int) for v in values] or [default]


def instance_dir() -> Path:
    return _path("CAUSERIE_INSTANCE", BASE_DIR / "instance")


def _secret_key(folder: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the instance folder.

    Generating it on every start would log everyone out at each restart.
    """
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = folder / "secret_key"
    if not key_file.exists():
        folder.mkdir(parents=True, exist_ok=True)
        create_private_file(key_file, secrets.token_hex(32))
    return key_file.read_text().strip()


def create_private_file(path: Path, content: str = "") -> bool:
    """Create a file only its owner may read (0600) from its first instant, whatever the umask
    (a chmod after writing would leave a moment where others could); False if it exists."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as file:
        file.write(content)
    return True


class Config:
    INSTANCE_DIR = instance_dir()
    SECRET_KEY = _secret_key(INSTANCE_DIR)
    # SQLite in the instance folder unless DATABASE_URL names another database.
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'causerie.sqlite3'}")
    # Folder scanned for *.gguf files, on top of the models shipped as Python packages.
    MODELS_DIR = _path("MODELS_DIR", INSTANCE_DIR / "models")
    # The model offered by default; the first available model when it is missing.
    DEFAULT_MODEL = os.environ.get("DEFAULT_MODEL", "SmolLM2-135M-Instruct.Q4_1")
    # A model that appears on an engine (a file in MODELS_DIR, a model pulled on an Ollama host) is
    # offered to users at once ("1"), or only once the admin enables it ("0", the default). The
    # models shipped with the app and DEFAULT_MODEL are offered from the first start either way.
    NEW_MODELS_ENABLED = os.environ.get("NEW_MODELS_ENABLED", "0").strip().lower() in ("1", "true", "on")
    # The embedded models: llama.cpp's own server, one process per model ("server"), or
    # llama-cpp-python in this process ("inprocess": one answer at a time, no prompt cache
    # across conversations); the latter too when no llama-server is installed.
    LLAMA_ENGINE = os.environ.get("LLAMA_ENGINE", "server").strip() or "server"
    # Where scripts/setup installs the llama-server it builds from llama-cpp-python's sources.
    LLAMA_SERVER_BIN = _path("LLAMA_SERVER_BIN", Path(sys.prefix) / "llama-server" / "llama-server")
    # The GGUF embedding model that finds passages by meaning, beside full-text search, when
    # documents are searched; scripts/setup writes multilingual-e5-small (French, English and 98
    # other languages) there. Empty: full-text search only.
    EMBEDDING_MODEL = os.environ.get(
        "EMBEDDING_MODEL", str(Path(sys.prefix) / "embedding-models" / "multilingual-e5-small.Q4_0.gguf")
    ).strip()
    # llama.cpp: threads (0 = the machine's cores) and context window in tokens, per answer:
    # each of llama-server's slots has this context of its own.
    LLAMA_THREADS = _int("LLAMA_THREADS", 0)
    LLAMA_CONTEXT = _int("LLAMA_CONTEXT", 2048)
    # Answers one llama-server decodes together (fewer when the model's weights, the slots'
    # caches and the prompt cache would pass 80 % of this machine's memory).
    LLAMA_SLOTS = _int("LLAMA_SLOTS", 4)
    # RAM each llama-server keeps for the prompts evicted from its slots (MiB), so that a
    # conversation coming back later is not read again from its start. llama.cpp's own
    # default (8 GiB) is too much for a 16 GB server.
    PROMPT_CACHE_MB = _int("PROMPT_CACHE_MB", 1024)
    # Seconds a llama-server may take to load its model.
    LLAMA_LOAD_TIMEOUT = _float("LLAMA_LOAD_TIMEOUT", 600.0)
    # Longest answer, in tokens; also the room kept free in the context window for it.
    MAX_ANSWER_TOKENS = _int("MAX_ANSWER_TOKENS", 512)
    # Sampling for chat answers. A fixed seed with temperature 0 makes answers repeatable
    # (benchmarks, tests); no seed draws a new one per answer.
    GENERATION_TEMPERATURE = _float("GENERATION_TEMPERATURE", 0.7)
    GENERATION_SEED = _int("GENERATION_SEED", -1)
    # Ollama hosts, comma-separated; empty for none. Their models join the embedded ones.
    OLLAMA_HOSTS = [
        h.strip() for h in os.environ.get("OLLAMA_HOSTS", "http://127.0.0.1:11434").split(",") if h.strip()
    ]
    # Seconds: to connect; for a loaded model's first token; for a model to load (minutes on
    # a CPU is normal); of silence once an answer has begun. Past each, the user is told why.
    OLLAMA_CONNECT_TIMEOUT = _float("OLLAMA_CONNECT_TIMEOUT", 3.0)
    OLLAMA_FIRST_TOKEN_TIMEOUT = _float("OLLAMA_FIRST_TOKEN_TIMEOUT", 120.0)
    OLLAMA_LOAD_TIMEOUT = _float("OLLAMA_LOAD_TIMEOUT", 600.0)
    OLLAMA_STALL_TIMEOUT = _float("OLLAMA_STALL_TIMEOUT", 60.0)
    # How long Ollama keeps a model in memory after an answer (its own default is 5m; a
    # reload costs minutes on a CPU). Sent with every request.
    OLLAMA_KEEP_ALIVE = os.environ.get("OLLAMA_KEEP_ALIVE", "30m")
    # How many answers each Ollama host writes at once (its OLLAMA_NUM_PARALLEL): one number
    # for every host, or one per host in the order of OLLAMA_HOSTS ("4,2").
    OLLAMA_PARALLEL = _int_list("OLLAMA_PARALLEL", 1)
    # How the Ollama server and its runners are named on this machine (a regular expression
    # matched against process names), to measure their CPU and memory.
    OLLAMA_PROCESS_PATTERN = os.environ.get("OLLAMA_PROCESS_PATTERN", "ollama")
    # How often a host's model list is asked again (seconds); pages use the last answer meanwhile.
    OLLAMA_LIST_SECONDS = _float("OLLAMA_LIST_SECONDS", 5.0)
    # How long a host that failed (refused, reset, timed out) is skipped before it is asked again;
    # its answers meanwhile go to another host that has the model.
    OLLAMA_RETRY_SECONDS = _float("OLLAMA_RETRY_SECONDS", 30.0)
    # Answers being written or waiting for their turn, in all (beyond: 503 and Retry-After)
    # and per person (beyond: 429): one person's script cannot take every place.
    MAX_ANSWERS = _int("MAX_ANSWERS", 64)
    MAX_ANSWERS_PER_USER = _int("MAX_ANSWERS_PER_USER", 3)
    # Open event streams (each holds a server thread), in all and per person: beyond the
    # latter, the person's oldest stream is closed (its page can follow the answer again).
    # Waitress's threads and connections, and the database pool, derive from MAX_STREAMS.
    MAX_STREAMS = _int("MAX_STREAMS", 64)
    MAX_STREAMS_PER_USER = _int("MAX_STREAMS_PER_USER", 3)
    # An answer nobody has followed for this many minutes is cancelled (0: never; it keeps
    # its place and is there when its author comes back).
    UNWATCHED_CANCEL_MINUTES = _int("UNWATCHED_CANCEL_MINUTES", 0)
    # How long a finished answer's events stay in memory, so that a page reconnecting just
    # after the end still receives them (seconds); later, the stored message is the answer.
    FINISHED_ANSWER_SECONDS = _int("FINISHED_ANSWER_SECONDS", 600)
    # The benchmark suites: one TOML file each (see benchmarks/README.md).
    BENCH_SUITES_DIR = _path("BENCH_SUITES_DIR", BASE_DIR / "benchmarks" / "suites")
    HOST = os.environ.get("HOST", "127.0.0.1")
    PORT = _int("PORT", 8294)
    # A partial answer is written to the database this often while it streams (seconds).
    PARTIAL_SAVE_SECONDS = _float("PARTIAL_SAVE_SECONDS", 2.0)
    # An SSE comment is sent this often while nothing else is, so proxies keep the stream open.
    PING_SECONDS = _float("PING_SECONDS", 5.0)
    BABEL_DEFAULT_LOCALE = os.environ.get("DEFAULT_LANGUAGE", "fr")
    LANGUAGES = ("fr", "en")
    BABEL_TRANSLATION_DIRECTORIES = str(BASE_DIR / "app" / "translations")
    APP_NAME = os.environ.get("APP_NAME", "Causerie")
    # The company's look (app/settings/brand.py checks both at start): a colour like #0a6e4f,
    # from which every brand-* shade is mixed, dark enough for white text on it; and a logo
    # file (.svg, .png, .jpg, .webp) shown beside the name. Empty: Causerie's own.
    BRAND_COLOR = os.environ.get("BRAND_COLOR", "").strip()
    BRAND_LOGO = os.environ.get("BRAND_LOGO", "").strip()
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "") == "1"
    # A session ends after this long without a request ("Stay signed in" excepted), and in any
    # case this long after the sign-in. "Stay signed in" keeps the session cookie past the
    # browser's closing (a permanent session), no separate remember-me cookie.
    # Who may create an account: open (anyone on the network), approval (the admin approves
    # each), closed. The admin changes it on the Users page; the first account is always made.
    REGISTRATION_MODE = os.environ.get("REGISTRATION_MODE", "open")
    SESSION_IDLE_MINUTES = _int("SESSION_IDLE_MINUTES", 480)
    # Directory accounts (LDAP, OIDC) are checked against the directory again this often, for
    # open sessions and API keys alike: disabled or gone there, out here.
    DIRECTORY_RECHECK_MINUTES = _int("DIRECTORY_RECHECK_MINUTES", 15)
    # LDAP / Active Directory sign-in (app/directory/ldap.py; README "Directory sign-in"), on when
    # LDAP_URL is set: ldaps://host:636, or ldap://host:389 with LDAP_STARTTLS=1. A service account
    # (LDAP_BIND_DN, LDAP_BIND_PASSWORD) finds the person under LDAP_USER_BASE with
    # LDAP_USER_FILTER ({username}: the name typed, escaped); the person's own bind checks the
    # password. app/directory/settings.py refuses to start on an incomplete or wrong setting.
    LDAP_URL = os.environ.get("LDAP_URL", "").strip()
    LDAP_BIND_DN = os.environ.get("LDAP_BIND_DN", "").strip()
    LDAP_BIND_PASSWORD = os.environ.get("LDAP_BIND_PASSWORD", "")
    LDAP_USER_BASE = os.environ.get("LDAP_USER_BASE", "").strip()
    LDAP_USER_FILTER = os.environ.get("LDAP_USER_FILTER", "").strip() or "(uid={username})"
    # The attribute holding the name the person signs in with (Active Directory: sAMAccountName).
    LDAP_USERNAME_ATTRIBUTE = os.environ.get("LDAP_USERNAME_ATTRIBUTE", "").strip() or "uid"
    # The stable id linking the account, never the name (Active Directory: objectGUID).
    LDAP_ID_ATTRIBUTE = os.environ.get("LDAP_ID_ATTRIBUTE", "").strip() or "entryUUID"
    # Groups: the person's memberOf (Active Directory; OpenLDAP's memberof overlay) when
    # LDAP_GROUP_BASE is empty, else a search there with LDAP_GROUP_FILTER ({dn}, {username}).
    LDAP_GROUP_BASE = os.environ.get("LDAP_GROUP_BASE", "").strip()
    LDAP_GROUP_FILTER = os.environ.get("LDAP_GROUP_FILTER", "").strip() or "(member={dn})"
    # Members of this group (its DN or its cn) are Causerie admins; empty: admins are chosen here.
    LDAP_ADMIN_GROUP = os.environ.get("LDAP_ADMIN_GROUP", "").strip()
    LDAP_STARTTLS = os.environ.get("LDAP_STARTTLS", "0").strip().lower() in ("1", "true", "on")
    # The CA certificate(s) (PEM) the directory's TLS certificate is checked against; empty: the
    # system's. The certificate is always checked.
    LDAP_CA_FILE = os.environ.get("LDAP_CA_FILE", "").strip()
    # Seconds to connect and to wait for each answer: a dead directory must not hang sign-in.
    LDAP_TIMEOUT_SECONDS = _float("LDAP_TIMEOUT_SECONDS", 5.0)
    # OpenID Connect sign-in (app/directory/oidc.py; README "OpenID Connect (SSO)"), on when
    # OIDC_ISSUER is set: the provider's issuer URL, whose /.well-known/openid-configuration
    # names everything else. The client registered there for Causerie: its id and secret; the
    # redirect URI to register is https://<this server>/auth/oidc/callback (OIDC_REDIRECT_URI
    # when the address this server sees differs from the one people use).
    OIDC_ISSUER = os.environ.get("OIDC_ISSUER", "").strip()
    OIDC_CLIENT_ID = os.environ.get("OIDC_CLIENT_ID", "").strip()
    OIDC_CLIENT_SECRET = os.environ.get("OIDC_CLIENT_SECRET", "")
    OIDC_REDIRECT_URI = os.environ.get("OIDC_REDIRECT_URI", "").strip()
    # offline_access: the refresh token with which each re-check asks the provider again.
    OIDC_SCOPES = os.environ.get("OIDC_SCOPES", "").strip() or "openid profile email offline_access"
    # The claims holding the person's name here and their groups (a list of names or ids).
    OIDC_USERNAME_CLAIM = os.environ.get("OIDC_USERNAME_CLAIM", "").strip() or "preferred_username"
    OIDC_GROUPS_CLAIM = os.environ.get("OIDC_GROUPS_CLAIM", "").strip() or "groups"
    # Members of this group (a value of the groups claim) are Causerie admins; empty: chosen here.
    OIDC_ADMIN_GROUP = os.environ.get("OIDC_ADMIN_GROUP", "").strip()
    # The CA certificate(s) (PEM) the provider's TLS certificate is checked against; empty: the
    # usual public CAs. The certificate is always checked.
    OIDC_CA_FILE = os.environ.get("OIDC_CA_FILE", "").strip()
    # The sign-in button's words: "Se connecter avec <OIDC_PROVIDER_NAME>".
    OIDC_PROVIDER_NAME = os.environ.get("OIDC_PROVIDER_NAME", "").strip() or "SSO"
    OIDC_TIMEOUT_SECONDS = _float("OIDC_TIMEOUT_SECONDS", 10.0)
    SESSION_MAX_DAYS = _int("SESSION_MAX_DAYS", 7)
    PERMANENT_SESSION_LIFETIME = timedelta(days=SESSION_MAX_DAYS)
    # Sign-in throttling, per account and per address (app/auth/throttle.py): after this many
    # failures within an hour, a wait of a minute, doubling with each further failure up to
    # LOGIN_MAX_DELAY_SECONDS; and never more than LOGIN_FAILURES_PER_HOUR failures an hour.
    LOGIN_FAILURES_BEFORE_DELAY = _int("LOGIN_FAILURES_BEFORE_DELAY", 5)
    LOGIN_FAILURES_PER_HOUR = _int("LOGIN_FAILURES_PER_HOUR", 100)
    LOGIN_MAX_DELAY_SECONDS = _int("LOGIN_MAX_DELAY_SECONDS", 900)
    # Accounts that may be made from one address within an hour (beyond: 429, and when to
    # come back). Behind a proxy, set TRUSTED_PROXIES, or every visitor shares one count.
    REGISTRATIONS_PER_HOUR = _int("REGISTRATIONS_PER_HOUR", 10)
    # Passwords hashed at once (each takes 64 MiB and a core for a moment; 0: one per core), and
    # how long a sign-in or sign-up waits for its turn before being asked to try again (seconds).
    PASSWORD_HASHES_AT_ONCE = _int("PASSWORD_HASHES_AT_ONCE", 0)
    PASSWORD_HASH_WAIT_SECONDS = _float("PASSWORD_HASH_WAIT_SECONDS", 10.0)
    # How many reverse proxies stand in front (each adds itself to X-Forwarded-For). 0: the
    # header is ignored, since anyone can send it; behind a proxy, without this, every visitor
    # has the proxy's address and shares one throttle.
    TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)
    # Served directly (TRUSTED_PROXIES=0), connections one address may hold at once; the ones
    # beyond are closed at once, so one client's idle sockets cannot take everyone's places.
    CONNECTIONS_PER_ADDRESS = _int("CONNECTIONS_PER_ADDRESS", 32)
    MAX_CONTENT_LENGTH = 1024 * 1024
    # Documents (issue 17). Uploads are kept here, outside static/, under random names.
    DOCUMENTS_DIR = _path("DOCUMENTS_DIR", INSTANCE_DIR / "documents")
    # One uploaded file at most (the upload routes alone: every other request keeps 1 MB), and
    # pages of one document.
    MAX_UPLOAD_MB = _int("MAX_UPLOAD_MB", 20)
    MAX_DOCUMENT_PAGES = _int("MAX_DOCUMENT_PAGES", 500)
    # Tokens of document passages sent with a question, unless the admin sets it per model: on a
    # CPU every token is read before the first word (a 1.5B model reads ~40 tokens/s on 2 cores).
    DOCUMENT_TOKENS = _int("DOCUMENT_TOKENS", 1500)
    # A message longer than this is refused with a clear error (characters).
    MAX_MESSAGE_CHARS = _int("MAX_MESSAGE_CHARS", 20000)
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}


class TestConfig(Config):
    TESTING = True
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    WTF_CSRF_ENABLED = False
    BABEL_DEFAULT_LOCALE = "en"
    PARTIAL_SAVE_SECONDS = 0.05
    OLLAMA_HOSTS: list[str] = []  # tests start their own Ollama stand-in when they need one
    # The engines' models offered at once, as the web layer's tests expect; the tests of the
    # policy itself switch it off (tests/test_admin_models.py).
    NEW_MODELS_ENABLED = True
    LLAMA_ENGINE = "inprocess"  # engine tests choose theirs; the web layer's use a scripted one
