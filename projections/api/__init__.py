"""The HTTP read API over the projections (DESIGN.md §6): FastAPI on a psycopg async pool.

`app` wires it, `auth` checks bearer tokens, `views` parses query parameters, `ledger_queries`
holds the SQL, `schemas` the response bodies, `errors` the refusal bodies and `routes_ledger`
the ledger and balance endpoints. It only reads: it never writes a table nor decides a
business outcome.
"""
