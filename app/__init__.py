"""The application factory."""

from __future__ import annotations

from flask import Flask

from config import BASE_DIR, Config


def create_app(config_class: type = Config, llm_services=None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(BASE_DIR / "static"),
        instance_path=str(config_class.INSTANCE_DIR),
        instance_relative_config=False,
    )
    app.config.from_object(config_class)
    from app.directory import settings as directory_settings

    directory_settings.check(app)  # a wrong LDAP_*/OIDC_* setting stops the start, naming it
    register_proxies(app)
    register_extensions(app)
    register_converters(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_security(app)
    from app import answers, llm
    from app.admin.services import load_preferences
    from app.metrics.sampler import CpuShares

    llm.init_app(app, llm_services, preferences=load_preferences, meter=CpuShares())
    answers.init_app(app)
    from app import bench

    bench.init_app(app)
    return app


def register_proxies(app: Flask) -> None:
    # The client's address is taken from X-Forwarded-For only behind proxies the admin declared:
    # otherwise anyone could send any address, and escape the per-address sign-in throttle.
    if app.config["TRUSTED_PROXIES"] > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"])


def register_extensions(app: Flask) -> None:
    from app import database, formatting, i18n  # noqa: F401  (database: its SQLite pragmas apply on every connection)
    from app.extensions import babel, csrf, db, login_manager, migrate
    from app.sizing import database_pool

    pool = database_pool(app.config["MAX_STREAMS"], app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**pool, **app.config["SQLALCHEMY_ENGINE_OPTIONS"]}
    database.create_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"], app.instance_path)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"))
    from app.documents.routes import lift_upload_limit

    app.before_request(lift_upload_limit)  # before the CSRF check, which reads the form
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale, timezone_selector=i18n.select_timezone)
    login_manager.init_app(app)
    i18n.init_app(app)
    formatting.init_app(app)
    from app.documents.indexing import Indexer

    app.extensions["documents"] = Indexer(app)


def register_converters(app: Flask) -> None:
    from app.errors.inputs import register_converters

    register_converters(app)


def register_blueprints(app: Flask) -> None:
    from app.admin import bp as admin_bp
    from app.api import bp as api_bp
    from app.api import keys_bp as api_keys_bp
    from app.api import openai_bp
    from app.audit.views import bp as audit_bp
    from app.auth import bp as auth_bp
    from app.bench import bp as bench_bp
    from app.chat import bp as chat_bp
    from app.compare import bp as compare_bp
    from app.directory.oidc_routes import bp as oidc_bp
    from app.documents.routes import bp as documents_bp
    from app.groups import bp as groups_bp
    from app.health import bp as health_bp
    from app.knowledge import bp as knowledge_bp
    from app.quotas import bp as quotas_bp
    from app.settings import bp as settings_bp
    from app.settings.brand import bp as brand_bp
    from app.sharing import bp as sharing_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(oidc_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(chat_bp)
    app.register_blueprint(compare_bp)
    app.register_blueprint(documents_bp)
    app.register_blueprint(knowledge_bp)
    app.register_blueprint(settings_bp)
    app.register_blueprint(brand_bp)
    app.register_blueprint(sharing_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(openai_bp)
    app.register_blueprint(api_keys_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(bench_bp, url_prefix="/admin/benchmarks")
    app.register_blueprint(groups_bp, url_prefix="/admin/groups")
    app.register_blueprint(quotas_bp)
    app.register_blueprint(audit_bp)  # /admin/audit


def register_errorhandlers(app: Flask) -> None:
    from app.errors import init_app

    init_app(app)


def register_commands(app: Flask) -> None:
    from app.cli import init_app

    init_app(app)


def register_security(app: Flask) -> None:
    from app.security import init_app

    init_app(app)
