"""`loyalty simulate`: the engine offline (no Kafka), through the same rules as the worker."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console

from processors import scenarios
from processors.codec.json_form import JsonFormError, from_json_line, to_json_line
from processors.contract.base import Event
from processors.simulation import Simulation

console = Console(stderr=True, soft_wrap=True)


def _read_events(source: TextIO, name: str) -> list[Event]:
    events, problems = [], []
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            events.append(from_json_line(line))
        except JsonFormError as error:
            problems.append(f"{name}:{number}: {error}")
    if problems:
        for problem in problems:
            console.print(f"[red]{problem}[/red]", highlight=False)
        sys.exit(1)
    return events


SIMULATED_PUBLICATION = datetime(2000, 1, 1, tzinfo=UTC)
"""When offers read from files count as published in a simulation: a fixed instant, so a
simulation never reads the clock and two runs give identical outputs."""


def _offer_events(paths: tuple[Path, ...]) -> list[Event]:
    if not paths:
        return []
    from processors import offer_files

    loaded = offer_files.load_offer_files(
        offer_files.find_offer_files(paths), published_at=SIMULATED_PUBLICATION
    )
    for problem in loaded.errors + loaded.warnings:
        console.print(str(problem), highlight=False)
    if not loaded.is_valid:
        sys.exit(1)
    return list(loaded.events)


@click.command("simulate")
@click.option(
    "--config",
    "config_files",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="JSON lines of config events (ProgramConfigured, OfferPublished, ...). Repeatable.",
)
@click.option(
    "--offers",
    "offer_paths",
    type=click.Path(exists=True, path_type=Path),
    multiple=True,
    help="Offer files (YAML or JSON), as `loyalty offers validate` reads them. Repeatable.",
)
@click.option(
    "--scenario",
    "scenario_paths",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="Run scenario files and check their expectations instead. Repeatable.",
)
@click.option("--notes/--no-notes", default=False, help="Print why inputs changed nothing.")
@click.argument("events", type=click.File("r"), required=False)
def simulate(
    config_files: tuple[Path, ...],
    offer_paths: tuple[Path, ...],
    scenario_paths: tuple[Path, ...],
    notes: bool,
    events: TextIO | None,
) -> None:
    """Run EVENTS (JSON lines; `-` for stdin) through the rules, offline and deterministic:
    every output event on stdout as JSON lines, in order. The dry run before publishing an
    offer; `--scenario` runs scenario files and reports what did not hold."""
    if scenario_paths:
        sys.exit(_run_scenarios(scenario_paths))
    if events is None:
        raise click.UsageError("give an EVENTS file (or `-`), or --scenario files")
    simulation = Simulation()
    for path in config_files:
        with path.open() as source:
            simulation.run(_read_events(source, str(path)))
    simulation.run(_offer_events(offer_paths))
    for event in _read_events(events, events.name):
        for output in simulation.feed(event):
            click.echo(to_json_line(output))
    if notes:
        for note in simulation.notes:
            console.print(f"note: {note}", highlight=False)
    elif simulation.notes:  # an input that changed nothing is not silent (stderr: stdout is JSON)
        console.print(
            f"{len(simulation.notes)} input(s) changed nothing; --notes says why", highlight=False
        )


def _run_scenarios(paths: tuple[Path, ...]) -> int:
    failed = 0
    for path in paths:
        try:
            scenario = scenarios.load(path)
        except scenarios.ScenarioError as error:
            console.print(f"[red]ERROR[/red] {error}", highlight=False)
            failed += 1
            continue
        simulation = Simulation()
        simulation.run(scenario.config)
        problems = scenarios.check(scenario, simulation.run(scenario.events))
        if problems:
            failed += 1
            console.print(f"[red]FAIL[/red] {path}: {scenario.name}", highlight=False)
            for problem in problems:
                console.print(f"  {problem}", highlight=False)
        else:
            console.print(f"[green]ok[/green]   {path}: {scenario.name}", highlight=False)
    console.print(f"{len(paths) - failed} of {len(paths)} scenarios hold")
    return 1 if failed else 0
