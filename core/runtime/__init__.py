"""The ground floor every stage stands on: the error hierarchy (:mod:`.errors`), progress events and
cancel tokens (:mod:`.jobs`), atomic writes (:mod:`.atomic`), the one way Keras and TensorFlow are
imported (:mod:`.ml_backend`) with their start-up lines kept quiet (:mod:`.quiet`), the edition
(:mod:`.edition`), the label codes (:mod:`.labels`), the choice sets (:mod:`.choices`), the study summary
(:mod:`.summary`) and the user's settings (:mod:`.settings`). Imports nothing else of ``core``.
"""
