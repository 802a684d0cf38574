# What a code patch edits in the fake project: the job's behaviour and a flat Elo bonus.
BEHAVIOUR = "ok"
ELO_BONUS = 0.0
