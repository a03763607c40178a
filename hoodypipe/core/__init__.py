"""
The transfer's rules. Pure logic: no sockets, no HTTP; time comes in as an
IReactorTime.

- ``registry``: who may join which pipe, the caps and their counts.
- ``lifecycle``: one pipe's life as a state machine, every transition a row.
- ``pipe``: a pipe's data, the inputs of its machine and what it needs from
  the registry.
- ``parties``: the sender, receivers and byte path as the rules see them.
- ``outcomes``: what the rules decide (refusals, a sender's news), for the
  web layer to word.
- ``events``: what observers (spectators, metrics, notifications) are told.
- ``errors``: ``Refusal``, a status code and an ``[ERROR]`` line.
"""
