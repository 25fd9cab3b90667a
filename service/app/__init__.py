"""The application layer: :class:`service.app.service.Service` and its parts (reads, writes,
jobs and serving, the audit trail). The REST API and the CLI call it and print its views
(:mod:`service.views`); neither opens a DB session itself."""
