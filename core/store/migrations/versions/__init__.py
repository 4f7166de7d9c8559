"""The index's revisions, one file each, named by the schema number they leave (see ``core.store.migrations``)."""
