"""The staff console: server-rendered pages under `/console`, served by the API process, for
marketers, member-care agents and admins (docs/adr/0035-staff-console.md).

One module per concern: `sessions` (sign-in cookie, CSRF), `roles` (who may open which area,
and the navigation), `audit` (the append-only staff audit log), `pages` (templates and the
answers every page shares), and one `routes_<area>` module per area of the console, each with
its templates in `templates/<area>/`; `router` lists the areas and mounts them. Pages are thin:
they call the modules the CLI calls (`processors.offer_files`, `projections.offer_report`, ...),
never a second copy of a rule.
"""
