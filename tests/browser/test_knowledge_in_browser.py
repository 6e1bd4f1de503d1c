"""Shared knowledge as people meet it in headless Chromium: an admin creates a base, sends
several files at once and watches them become "Indexé" without reloading; a user picks a base
for a conversation by typing # in the message box (a chip shows it, and it stays with the
conversation).

The server is the real one (upload, extraction, indexing); the model is the Ollama stand-in's
scripted one where a message is sent, since these tests are about the pages.
"""

from __future__ import annotations

import uuid

import pytest

from tests.browser.pages import new_chat
from tests.documents import write_pdf

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
from playwright.sync_api import expect  # noqa: E402

SCRIPTED_MODEL = "deepseek-r1:1.5b"  # the stand-in's scripted model
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
READY_MS = 90_000  # indexing two files, beside whatever else the machine runs
NOTE = (
    "# Procédure qualité\n\nChaque non-conformité est déclarée dans les 48 heures au service qualité.\n\n"
    "## Audit\n\nUn audit interne a lieu chaque trimestre.\n"
)


def create_collection(page, name: str, description: str) -> None:
    page.goto("/knowledge/new")
    page.get_by_label("Nom", exact=True).fill(name)
    page.get_by_label("Description", exact=True).fill(description)
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("h1")).to_have_text(name)


def test_an_admin_creates_a_base_sends_two_files_and_sees_them_indexed(open_page, tmp_path, artifacts_dir):
    page = open_page()
    name = f"Qualité {uuid.uuid4().hex[:4]}"
    create_collection(page, name, "Procédures et manuels de l’atelier")
    note = tmp_path / "procedure.md"
    note.write_text(NOTE, encoding="utf-8")
    pdf = write_pdf(
        tmp_path / "manuel.pdf", ["Manuel : mise en route.", "Sécurité : le badge se porte visible."]
    )
    page.locator("#files").set_input_files([str(note), str(pdf)])
    page.get_by_role("button", name="Envoyer").click()
    expect(page.locator("[data-flash]")).to_contain_text("2 documents ajoutés")
    rows = page.locator("[data-document]")
    expect(rows).to_have_count(2)
    # No reload: the page asks for the states until both are done.
    for row in (rows.nth(0), rows.nth(1)):
        expect(row.locator("[data-state-label]")).to_have_text("Indexé", timeout=READY_MS)
    expect(page.locator('[data-document]:has-text("manuel.pdf") [data-pages]')).to_have_text("2")
    page.goto("/knowledge")
    row = page.locator("[data-collection]", has_text=name)
    expect(row.locator("[data-readers]")).to_have_text("tout le monde")
    expect(row.locator("[data-summary]")).to_have_text("2 indexés")


def test_an_unreadable_file_is_refused_by_name_beside_the_one_that_goes_in(open_page, tmp_path):
    page = open_page()
    create_collection(page, f"Refus {uuid.uuid4().hex[:4]}", "")
    bad = tmp_path / "outil.exe"
    bad.write_bytes(b"MZ\x90\x00binary")
    good = tmp_path / "note.txt"
    good.write_text("Une note lisible.", encoding="utf-8")
    page.locator("#files").set_input_files([str(bad), str(good)])
    page.get_by_role("button", name="Envoyer").click()
    expect(page.locator("[data-flash]").first).to_contain_text(
        "« outil.exe » n'est pas d'un type de fichier pris en charge"
    )
    expect(page.locator("[data-document]")).to_have_count(1)
    expect(page.locator("[data-document-name]")).to_have_text("note.txt")


def test_typing_hash_and_a_name_picks_a_base_that_stays_with_the_conversation(
    open_page, tmp_path, scripted_model
):
    page = open_page()
    name = f"Atelier{uuid.uuid4().hex[:4]}"
    create_collection(page, name, "Fiches de poste")
    new_chat(page)
    page.wait_for_function("() => document.querySelector('[data-collection-bar]')")
    page.locator("#model").select_option(SCRIPTED_MODEL)
    prompt = page.locator("#prompt")
    prompt.press_sequentially("Que dit #ateli")
    suggestion = page.locator("[data-collection-suggestions] [role=option]", has_text=name)
    expect(suggestion).to_be_visible()
    prompt.press("Enter")  # picks the base, sends nothing
    expect(page.locator(f'[data-collection-chip="{name}"]')).to_be_visible()
    expect(prompt).to_have_value("Que dit ")
    expect(page.locator("#messages article")).to_have_count(0)
    # A # that names no base is left as typed; Esc closes the suggestions and stops nothing.
    prompt.press_sequentially("#1 ")
    expect(page.locator("[data-collection-suggestions]")).to_be_hidden()
    expect(prompt).to_have_value("Que dit #1 ")
    scripted_model.script = ["Réponse."]
    prompt.fill("Que disent les fiches ?")
    prompt.press("Enter")
    page.wait_for_url("**/c/*")
    page.wait_for_selector("#send:not(.hidden)", timeout=60_000)
    page.reload()
    expect(page.locator(f'[data-collection-chip="{name}"]')).to_be_visible()
    # ✕ takes it away, saved at once.
    page.get_by_role("button", name=f"Retirer « {name} »").click()
    expect(page.locator(f'[data-collection-chip="{name}"]')).to_have_count(0)
    expect(page.locator("[data-settings-status]")).to_have_text("Réglages enregistrés.")
    page.reload()
    expect(page.locator(f'[data-collection-chip="{name}"]')).to_have_count(0)


def test_screenshots_of_the_knowledge_pages_and_the_composers_bases(
    open_page, tmp_path, artifacts_dir, live_server
):
    from benchmarks.client import ChatClient

    ChatClient(live_server.base_url).register("lea", "un mot de passe assez long")  # for the switch
    setup = open_page()
    name = "Qualité et sécurité"
    if not setup.locator("[data-collection]", has_text=name).count():
        setup.goto("/knowledge")
        if not setup.locator(f'[data-collection-name]:text-is("{name}")').count():
            create_collection(setup, name, "Procédures, manuels et consignes de l’atelier")
            note = tmp_path / "procedure-qualite.md"
            note.write_text(NOTE, encoding="utf-8")
            pdf = write_pdf(
                tmp_path / "manuel-securite.pdf", ["Mise en route.", "Le badge se porte visible."]
            )
            setup.locator("#files").set_input_files([str(note), str(pdf)])
            setup.get_by_role("button", name="Envoyer").click()
            for row in (setup.locator("[data-document]").nth(0), setup.locator("[data-document]").nth(1)):
                expect(row.locator("[data-state-label]")).to_have_text("Indexé", timeout=READY_MS)
    setup.goto("/knowledge")
    collection_url = setup.locator(f'[data-collection-name]:text-is("{name}")').get_attribute("href")
    for width, viewport in (("1280", DESKTOP), ("390", PHONE)):
        for theme in ("light", "dark"):
            page = open_page(viewport, dark=theme == "dark")
            page.goto("/knowledge")
            page.screenshot(path=str(artifacts_dir / f"knowledge-list-{width}-{theme}.png"), full_page=True)
            page.goto(collection_url)
            page.screenshot(
                path=str(artifacts_dir / f"knowledge-collection-{width}-{theme}.png"), full_page=True
            )
            new_chat(page)
            page.locator("#prompt").press_sequentially("Résume #qual")
            expect(page.locator("[data-collection-suggestions]")).to_be_visible()
            page.screenshot(path=str(artifacts_dir / f"knowledge-hash-{width}-{theme}.png"))
            page.locator("#prompt").press("Enter")
            page.locator("[data-settings-toggle]").click()
            page.screenshot(path=str(artifacts_dir / f"knowledge-chips-{width}-{theme}.png"))
            page.goto("/knowledge/new")
            page.get_by_label("Nom", exact=True).fill(name)  # taken
            page.get_by_label("Seulement les personnes listées").check()
            page.get_by_label("Lecteurs", exact=False).fill("lea, personne")
            page.get_by_role("button", name="Enregistrer").click()
            # Both mistakes told at once: the name taken, the unknown reader.
            expect(page.locator("#name-errors")).to_have_text("Une base porte déjà ce nom.")
            expect(page.locator("#readers-errors")).to_have_text(
                "Aucun compte ne s’appelle « personne » : vérifiez l’orthographe."
            )
            page.screenshot(path=str(artifacts_dir / f"knowledge-form-{width}-{theme}.png"), full_page=True)
            for shown, address in (
                ("users", "/admin/users"),
                ("preset", "/settings#presets"),
                ("model-budget", f"/admin/models/settings?model={SCRIPTED_MODEL}"),
            ):
                page.goto(address)
                page.screenshot(
                    path=str(artifacts_dir / f"knowledge-{shown}-{width}-{theme}.png"), full_page=True
                )


def test_a_preset_brings_its_bases_to_a_new_conversation(open_page, scripted_model):
    page = open_page()
    name = f"Consignes{uuid.uuid4().hex[:4]}"
    create_collection(page, name, "")
    page.goto("/settings#presets")
    preset = f"Atelier {uuid.uuid4().hex[:4]}"
    form = page.locator("[data-new-preset]")
    form.get_by_label("Nom", exact=True).fill(preset)
    form.locator("[data-preset-collections] label", has_text=name).locator("input").check()
    form.get_by_role("button", name="Créer le préréglage").click()
    new_chat(page)
    page.locator("#model").select_option(SCRIPTED_MODEL)
    page.locator("[data-preset]").select_option(label=preset)
    expect(page.locator(f'[data-collection-chip="{name}"]')).to_be_visible()
    scripted_model.script = ["Réponse."]
    page.locator("#prompt").fill("Que disent les consignes ?")
    page.locator("#prompt").press("Enter")
    page.wait_for_url("**/c/*")
    page.wait_for_selector("#send:not(.hidden)", timeout=60_000)
    page.reload()
    expect(page.locator(f'[data-collection-chip="{name}"]')).to_be_visible()


def test_on_a_phone_a_tap_on_a_suggestion_picks_the_base(browser, live_server, logged_in_state):
    context = browser.new_context(
        locale="fr-FR",
        base_url=live_server.base_url,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        storage_state=logged_in_state,
    )
    try:
        page = context.new_page()
        name = f"Mobile{uuid.uuid4().hex[:4]}"
        create_collection(page, name, "")
        new_chat(page)
        page.locator("#prompt").press_sequentially("#mobi")
        page.locator("[data-collection-suggestions] [role=option]", has_text=name).tap()
        expect(page.locator(f'[data-collection-chip="{name}"]')).to_be_visible()
        expect(page.locator("#prompt")).to_have_value("")
    finally:
        context.close()
