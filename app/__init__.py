"""Consistency Studio's desktop app: a Qt front end over `engine`.

Layers (outermost first): `app.ui` (widgets) > `app.worker` (the engine thread) > `app.controller`
> `app.model` (Qt-free state). `app.gui.run(argv)` is the entry point.
"""
