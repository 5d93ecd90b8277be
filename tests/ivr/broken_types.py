"""Broken flows for the validator tests: conditions, keys, sub-flows, lists, templates, calendars, YAML.

Each case is (name, YAML with the expected line marked ``#<``, reason).
"""

from __future__ import annotations

CASES: list[tuple[str, str, str]] = [
    (
        "unknown number list",
        """
        lists:
          vip: ["1000"]
        flows:
          main:
            start: route
            nodes:
              route:
                type: branch
                cases:
                  - when: {in_list: vips}  #<
                    goto: bye
                default: bye
              bye: {type: hangup}
        """,
        "condition: unknown list 'vips' (known: vip)",
    ),
    (
        "unknown calendar",
        """
        flows:
          main:
            start: route
            nodes:
              route:
                type: branch
                cases:
                  - when: {business_hours: office}  #<
                    goto: bye
                default: bye
              bye: {type: hangup}
        """,
        "condition: unknown calendar 'office'",
    ),
    (
        "menu option that is not a key",
        """
        flows:
          main:
            start: m
            nodes:
              m:
                type: menu
                prompts: [menu]
                options:
                  "12": bye  #<
                on_failure: bye
              bye: {type: hangup}
        """,
        "menu node 'm': option '12' must be one key: 0-9, * or #",
    ),
    (
        "collect lengths reversed",
        """
        flows:
          main:
            start: c
            nodes:
              c:
                type: collect
                prompts: [enter]
                variable: pin
                min_length: 5  #<
                max_length: 3
                next: bye
                on_failure: bye
              bye: {type: hangup}
        """,
        "collect node 'c': min_length 5 is greater than max_length 3",
    ),
    (
        "misspelt key",
        """
        flows:
          main:
            start: m
            nodes:
              m:
                type: menu
                prompts: [menu]
                options: {"1": bye}
                timout: 5  #<
                on_failure: bye
              bye: {type: hangup}
        """,
        "menu node 'm': unknown key 'timout'",
    ),
    (
        "retries out of range",
        """
        flows:
          main:
            start: m
            nodes:
              m:
                type: menu
                prompts: [menu]
                options: {"1": bye}
                retries: 9  #<
                on_failure: bye
              bye: {type: hangup}
        """,
        "menu node 'm': 'retries' must be between 0 and 5, got 9",
    ),
    (
        "unknown sub-flow",
        """
        flows:
          main:
            start: s
            nodes:
              s:
                type: subflow
                flow: identify  #<
                next: bye
              bye: {type: hangup}
        """,
        "node 's': unknown flow 'identify'",
    ),
    (
        "sub-flow recursion",
        """
        flows:
          main:  #<
            start: s
            nodes:
              s: {type: subflow, flow: other, next: bye}
              bye: {type: hangup}
          other:
            start: s
            nodes:
              s: {type: subflow, flow: main, next: back}
              back: {type: return}
        """,
        "sub-flow recursion: main -> other -> main",
    ),
    (
        "unquoted number in a list",
        """
        lists:
          vip:
            - "1000"
            - 5550100  #<
        flows:
          main:
            start: bye
            nodes:
              bye: {type: hangup}
        """,
        "list 'vip': entry 5550100 must be a quoted string (YAML reads unquoted digits as a number and drops "
        "leading zeros)",
    ),
    (
        "unknown placeholder in a template",
        """
        flows:
          main:
            start: t
            nodes:
              t:
                type: tag
                alert: "{caller.name}"  #<
                next: e
              e: {type: hangup}
        """,
        "unknown placeholder {caller.name} (use {caller}, {called} or {vars.NAME})",
    ),
    (
        "assigning a built-in variable",
        """
        flows:
          main:
            start: s
            nodes:
              s:
                type: set
                values:
                  caller: "1234"  #<
                next: bye
              bye: {type: hangup}
        """,
        "cannot assign built-in variable 'caller'",
    ),
    (
        "calendar in an unknown time zone",
        """
        calendars:
          office:
            timezone: Mars/Olympus  #<
            hours: {weekdays: ["09:00-17:00"]}
        flows:
          main:
            start: bye
            nodes:
              bye: {type: hangup}
        """,
        "calendar 'office': unknown time zone 'Mars/Olympus'",
    ),
    (
        "calendar interval backwards",
        """
        calendars:
          office:
            timezone: UTC
            hours:
              weekdays:
                - "22:00-06:00"  #<
        flows:
          main:
            start: bye
            nodes:
              bye: {type: hangup}
        """,
        "calendar 'office': interval '22:00-06:00' must be 'HH:MM-HH:MM' with start before end (split a night "
        "shift at 24:00)",
    ),
    (
        "unquoted no read as a boolean",
        """
        flows:
          main:
            start: m
            nodes:
              m:
                type: menu
                prompts: [menu]
                options: {"1": bye}
                on_failure: no  #<
              bye: {type: hangup}
        """,
        "menu node 'm': 'on_failure' must be a string, got bool (YAML reads yes/no/on/off as booleans: quote it)",
    ),
    (
        "YAML syntax error",
        """
        flows:
          main:
            start: bye
            nodes: [unclosed  #<
        """,
        "YAML syntax: expected ',' or ']', but got '<stream end>'",
    ),]
