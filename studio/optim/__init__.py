"""How scenes are fitted: the optimisation engine, losses and plugins."""
