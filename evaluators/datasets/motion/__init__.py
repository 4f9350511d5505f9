"""Motion with text or action labels: HumanML3D, KIT-ML, HumanAct12, UESTC and their synthetic sets."""
