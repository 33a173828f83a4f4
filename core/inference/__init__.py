"""Running models: the cascade (:mod:`.cascade`), the engines that run each model
(:mod:`.engines`), the device question (:mod:`.devices`), the model library (:mod:`.library`) and the
user's saved engine and backend (:mod:`.settings`). Above :mod:`core.model`; never imports training.
"""
