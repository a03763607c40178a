"""
The transfer's rules: pipes, their parties and slots, their life cycle, caps
and timers. Pure logic: no sockets, no HTTP; time comes in as an IReactorTime.
"""
