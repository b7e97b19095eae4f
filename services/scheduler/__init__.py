"""The scheduler: desired state, reconciliation, REP `control`, PUB `state`.

main.py          the process (arguments, settings, logging, SIGHUP)
scheduler.py     its loop thread: control requests, the state stream, agents' events,
                 the configuration file watch
reconciler.py    the reconcile thread: observe the agents, plan, apply
agents.py        the link to one agent (bounded requests, availability, back-off)
relay.py         requests passed on to an agent for the dashboard (traffic)
model.py         what the scheduler knows, shared by both threads
config_keeper.py which configuration is in force after a reload (pure)
ports.py         host ports: the allocator (pure) and the host check
backoff.py       crash loops (pure)
diff.py          desired against actual: the steps (pure)
server_state.py  each server's published state (pure)
watch.py         noticing that a file changed
"""
