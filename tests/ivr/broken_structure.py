"""Broken flows for the validator tests: node shapes, targets, loops and prompts.

Each case is (name, YAML with the expected line marked ``#<``, reason).
"""

from __future__ import annotations

CASES: list[tuple[str, str, str]] = [
    (
        "transfer to an outside number is refused (never an INVITE to an outside number)",
        """
        flows:
          main:
            start: menu
            nodes:
              menu: {type: menu, prompts: [hello], options: {"1": out}, on_failure: bye}
              out: {type: transfer, number: "0044{caller}"}  #<
              bye: {type: hangup}
        """,
        "transfer node 'out': not available in this version: transfer to an external number (the node never sends "
        "an INVITE to an outside number; use a queue node)",
    ),
    (
        "a call-back request is refused",
        """
        flows:
          main:
            start: cb
            nodes:
              cb:
                type: callback  #<
                queue: support
        """,
        "callback node 'cb': not available in this version: call-back requests (use a voicemail node: the "
        "caller's number is kept with the message)",
    ),
    (
        "voicemail mailbox name",
        """
        flows:
          main:
            start: vm
            nodes:
              vm: {type: voicemail, mailbox: "sales/../x"}  #<
        """,
        "voicemail node 'vm': mailbox 'sales/../x' must be letters, digits, _ and -",
    ),
    (
        "unknown node type",
        """
        flows:
          main:
            start: hi
            nodes:
              hi: {type: playy, prompts: [hello], next: bye}  #<
              bye: {type: hangup}
        """,
        "node 'hi': unknown node type 'playy' (known: branch, collect, hangup, lookup, menu, play, "
        "queue, return, set, subflow, tag, voicemail)",
    ),
    (
        "unknown target",
        """
        flows:
          main:
            start: hi
            nodes:
              hi:
                type: play
                prompts: [hello]
                next: nowhere  #<
        """,
        "node 'hi': unknown target 'nowhere' in next",
    ),
    (
        "unknown menu option target",
        """
        flows:
          main:
            start: m
            nodes:
              m:
                type: menu
                prompts: [menu]
                options:
                  "1": bye
                  "2": sales  #<
                on_failure: bye
              bye: {type: hangup}
        """,
        "node 'm': unknown target 'sales' in options.2",
    ),
    (
        "unknown start",
        """
        flows:
          main:
            start: begin  #<
            nodes:
              bye: {type: hangup}
        """,
        "flow 'main': unknown start node 'begin'",
    ),
    (
        "unreachable node",
        """
        flows:
          main:
            start: bye
            nodes:
              bye: {type: hangup}
              orphan: {type: hangup}  #<
        """,
        "node 'orphan' is unreachable from start 'bye'",
    ),
    (
        "loop without input wait",
        """
        flows:
          main:
            start: a
            nodes:
              a: {type: play, prompts: [hello], next: b}  #<
              b:
                type: branch
                cases: [{when: {var: caller, op: eq, value: "1"}, goto: bye}]
                default: a
              bye: {type: hangup}
        """,
        "loop a -> b -> a never waits for caller input (add a menu or collect, or break the loop)",
    ),
    (
        "loop whose only exit leads back",
        """
        flows:
          main:
            start: m
            nodes:
              m:  #<
                type: menu
                prompts: [menu]
                options: {"1": bye}
                on_failure: sorry
              sorry: {type: play, prompts: [invalid], next: m}
              bye: {type: hangup}
        """,
        "loop m -> sorry -> m has no bounded exit: on_failure of 'm' leads back into the loop",
    ),
    (
        "menu without prompts",
        """
        flows:
          main:
            start: m
            nodes:
              m:  #<
                type: menu
                options: {"1": bye}
                on_failure: bye
              bye: {type: hangup}
        """,
        "menu node 'm': missing required key 'prompts'",
    ),
    (
        "empty prompt list",
        """
        flows:
          main:
            start: hi
            nodes:
              hi:
                type: play
                prompts: []  #<
                next: bye
              bye: {type: hangup}
        """,
        "play node 'hi': 'prompts' needs at least one prompt",
    ),
    (
        "missing prompt file",
        """
        flows:
          main:
            start: hi
            nodes:
              hi:
                type: play
                prompts:
                  - hello
                  - nosuch  #<
                next: bye
              bye: {type: hangup}
        """,
        "missing prompt 'nosuch': no file {prompt_dir}/nosuch.wav",
    ),
    (
        "prompt in the wrong audio format",
        """
        flows:
          main:
            start: hi
            nodes:
              hi: {type: play, prompts: [wide], next: bye}  #<
              bye: {type: hangup}
        """,
        "prompt 'wide': wide.wav must be 8000 Hz mono 16-bit PCM, got 16000 Hz, 2 channel(s), 16-bit",
    ),
    (
        "condition compares an int variable with a string",
        """
        flows:
          main:
            start: crm
            nodes:
              crm:
                type: lookup
                url: "http://crm/{caller}"
                result: {open_tickets: {path: tickets, type: int}}
                next: route
                on_error: bye
              route:
                type: branch
                cases:
                  - when: {var: open_tickets, op: eq, value: "3"}  #<
                    goto: bye
                default: bye
              bye: {type: hangup}
        """,
        "condition: variable 'open_tickets' is int, cannot compare with str '3'",
    ),
    (
        "ordering operator on a string variable",
        """
        flows:
          main:
            start: route
            nodes:
              route:
                type: branch
                cases:
                  - when:
                      var: caller  #<
                      op: gt
                      value: 5
                    goto: bye
                default: bye
              bye: {type: hangup}
        """,
        "condition: 'gt' compares integers; 'caller' is str and the value is int",
    ),
    (
        "unknown variable in a condition",
        """
        flows:
          main:
            start: route
            nodes:
              route:
                type: branch
                cases: [{when: {var: tier, op: eq, value: gold}, goto: bye}]  #<
                default: bye
              bye: {type: hangup}
        """,
        "condition: unknown variable 'tier' (no node sets it)",
    ),
    (
        "unknown operator",
        """
        flows:
          main:
            start: route
            nodes:
              route:
                type: branch
                cases:
                  - when: {var: caller, op: like, value: "5*"}  #<
                    goto: bye
                default: bye
              bye: {type: hangup}
        """,
        "condition: unknown operator 'like' (known: eq, ne, lt, le, gt, ge, in, matches, exists)",
    ),
]
