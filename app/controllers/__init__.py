"""The main window's controllers: one class per concern (study files, export, training set, PACS,
segmentation, editing, review, training, preferences, About), each given what it uses in its
constructor (:class:`app.controllers.services.WindowServices` and the panels it drives) and owning
its menu entries. :class:`app.main_window.MainWindow` builds the panels and assembles them."""
