"""MLIP stacking screen of the study-2 junction (not DFT): does CHGNet+D3 prefer the builder's 2.0 A contact?"""
import json, sys
from hetero.campaigns import load_campaign, build_host, model_facts
from hetero.flows.stacking import screen_stackings, stacking_note
camp = load_campaign(sys.argv[1])
slab, rec = build_host(camp, camp.model.size or "standard")
facts = model_facts(rec, slab)
print(rec.system, len(slab), facts.model_dump().get("dispersion"), flush=True)
doc, host = screen_stackings(slab, rec.fragments, rec.system, sys.argv[2],
                             {"models": ["chgnet"], "window_eV": 0.3, "stacking": {"grid": 2, "distances_A": [2.0, 2.7, 3.4], "max_dft": 3}}, facts)
open(sys.argv[2] + "/stacking_screen.json", "w").write(doc.model_dump_json(indent=1))
for c in doc.candidates: print(c.id, round(c.energy_eV["mlip:chgnet"], 3), round(c.final_gap_A["mlip:chgnet"], 2), c.group)
print(stacking_note(doc))
