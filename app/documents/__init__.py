"""Documents: files people attach to their questions or put in knowledge collections, their
text cut into passages and indexed, and the passages found for a question.

    extract.py    a file's text, page by page, by its content (in a child process)
    chunking.py   passages with overlap and their place
    store.py      files on disk and their records
    indexing.py   the background indexer
    retrieval.py  full text (+ vectors) ranked together
    context.py    the passages a question is sent with, within the model's budget
    access.py     who may read what
    routes.py     upload, progress, download (the blueprint)

Nothing is imported here: the extraction's child process imports app.documents.extract alone,
and starts in a fraction of the time without the web layer.
"""
