"""The performance study: every recurrent unit of the registry trained with one recipe at a matched parameter
budget over several seeds, measured on accuracy, speed, memory, robustness and stability (`gruasr compare`)."""
