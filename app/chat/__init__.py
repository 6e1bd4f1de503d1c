from flask import Blueprint

bp = Blueprint("chat", __name__)

from app.chat import archive_routes, routes, services  # noqa: E402,F401
from app.chat.titles import plain_title  # noqa: E402
from app.llm import model_name  # noqa: E402

# A title as shown (sidebar, header, search, the page's name): its words, not its Markdown.
bp.add_app_template_filter(plain_title, "plain_title")
# A model as users read it, wherever a page names one (under an answer, in the picker).
bp.add_app_template_global(model_name, "model_name")
# What the thread shows with a message: the files sent with a question, an answer's passages.
bp.add_app_template_global(services.attachments_of, "attachments_of")
bp.add_app_template_global(services.sources_of, "sources_of")
