"""The Qt-free engine: request/event dataclasses, cancel token, generation (and later training).

Protocol: a caller builds a frozen request, calls ``engine.run(request, emit, cancel)`` on the one
thread that owns the GPU, and receives past-tense event dataclasses through ``emit``; every event
carries the request's ``job_id``. Cancel is a :class:`CancelToken` that any thread may set.
"""
