"""The settings page: language and theme; the user's presets."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale, refresh
from flask_babel import gettext as _
from flask_login import current_user

from app.answers.asking import offered_to
from app.documents import access
from app.settings import bp, services
from app.settings.forms import AppearanceForm, PresetForm


def _offered_models() -> list[tuple[str, str]]:
    return [(entry.id, entry.name) for entry in offered_to(current_user)]


def _preset_form(**kwargs) -> PresetForm:
    """A preset's form, with the models offered and the knowledge bases the user may read."""
    collections = [(c.id, c.name) for c in access.readable_collections(current_user)]
    return PresetForm(models=_offered_models(), collections=collections, **kwargs)


def _page(
    appearance: AppearanceForm | None = None,
    new_preset: PresetForm | None = None,
    new_key: str = "",
    key_error: str = "",
):
    """The settings page; a form given is the one just sent back, with its errors (400).
    `new_key`: an API key just made, shown this once; `key_error`: why none was made (400)."""
    from app.api import keys

    appearance = appearance or AppearanceForm(
        formdata=None, language=current_user.language or str(get_locale()), theme=current_user.theme
    )
    new_preset = new_preset or _preset_form(formdata=None)
    status = 400 if appearance.errors or new_preset.errors or key_error else 200
    page = render_template(
        "settings/index.html",
        appearance=appearance,
        new_preset=new_preset,
        presets=current_user.presets,
        api_keys=keys.keys_of(current_user),
        new_key=new_key,
        key_error=key_error,
    )
    return page, status


@bp.route("", methods=["GET", "POST"])
def index():
    """The user's language and theme, and their presets."""
    form = AppearanceForm()
    if not form.validate_on_submit():
        return _page(appearance=form if form.is_submitted() else None)
    services.choose_appearance(current_user, form.language.data, form.theme.data)
    session["lang"] = form.language.data  # the pages after signing out speak it too
    refresh()  # this request's messages in the new language
    flash(_("Settings saved."), "success")
    return redirect(url_for("settings.index"))


@bp.post("/presets")
def create_preset():
    """A new preset."""
    form = _preset_form()
    if form.validate():
        try:
            services.save_preset(
                current_user,
                None,
                form.name.data,
                form.system_prompt.data,
                form.model.data,
                form.chosen_collections(),
            )
        except services.PresetNameTaken:
            form.name.errors.append(_("You already have a preset with this name."))
        else:
            flash(_("Preset “%(name)s” created.", name=form.name.data), "success")
            return redirect(url_for("settings.index") + "#presets")
    return _page(new_preset=form)


@bp.route("/presets/<int:preset_id>", methods=["GET", "POST"])
def edit_preset(preset_id: int):
    """Change one of the user's presets."""
    preset = services.owned_preset(current_user, preset_id)
    form = _preset_form(obj=preset)
    if request.method == "GET":
        form.collection_ids.data = [str(i) for i in preset.collection_ids or []]
    if form.validate_on_submit():
        try:
            services.save_preset(
                current_user,
                preset,
                form.name.data,
                form.system_prompt.data,
                form.model.data,
                form.chosen_collections(),
            )
        except services.PresetNameTaken:
            form.name.errors.append(_("You already have a preset with this name."))
        else:
            flash(_("Preset “%(name)s” saved.", name=form.name.data), "success")
            return redirect(url_for("settings.index") + "#presets")
    status = 400 if form.errors else 200
    return render_template("settings/preset.html", form=form, preset=preset), status


@bp.post("/presets/<int:preset_id>/delete")
def delete_preset(preset_id: int):
    """Delete one of the user's presets (the page asked for confirmation)."""
    preset = services.owned_preset(current_user, preset_id)
    name = preset.name
    services.delete_preset(preset)
    flash(_("Preset “%(name)s” deleted.", name=name), "success")
    return redirect(url_for("settings.index") + "#presets")
