"""The ground floor every stage stands on: the error hierarchy (:mod:`.errors`), progress events and
cancel tokens (:mod:`.jobs`), atomic writes (:mod:`.atomic`), the backends' start-up lines kept quiet
(:mod:`.quiet`), the edition (:mod:`.edition`), the label codes (:mod:`.labels`) and the run folder and
model card format (:mod:`.runs`), which the model package reads. Imports nothing else of ``core``.
"""
