"""Scripted models for the agent-loop tests: each reply is a function of the prompt it gets.

The task is "Roll 2d6, then multiply the result by 3." The second call has to use the number
the first observation gave, so a loop that does not feed observations back fails.
"""
import json
import re

QUESTION = "Roll 2d6, then multiply the result by 3."


def react_model(prompt: str) -> str:
    """Continues a ReAct prompt; the part after the real question is the run so far."""
    run = prompt.rsplit(f"Question: {QUESTION}", 1)[1]
    observations = re.findall(r"^Observation: (.*)$", run, flags=re.M)
    if run.endswith("Final Answer:"):
        return " " + (observations[-1] if observations else "no idea")
    if not observations:
        # writes a made-up observation too: the stop sequence must cut it off
        return ' I roll first.\nAction: roll_dice {"spec": "2d6"}\nObservation: 1000\nThought: done'
    if len(observations) == 1:
        return f' The roll is {observations[0]}. Now triple it.\nAction: calculator {{"expression": "{observations[0]} * 3"}}'
    return f" I know the answer.\nFinal Answer: {observations[1]}\n\nQuestion: next"


def rewoo_model(prompt: str) -> str:
    """Plans when asked to plan; solves from the evidence when asked to solve."""
    if prompt.endswith("Plan:"):
        return " Roll the dice.\n#E1 = roll_dice[2d6]\nPlan: Triple the roll.\n#E2 = calculator[#E1 * 3]\n\nQuestion: x"
    evidence = re.findall(r"^Evidence: (.*)$", prompt, flags=re.M)
    return f" {evidence[-1]}\n\nQuestion: junk"


def native_model(prompt: str) -> str:
    """FakeBackend.chat renders turns as 'role: content'; tool results arrive as 'tool: ...'."""
    results = re.findall(r"^tool: (.*)$", prompt, flags=re.M)
    if not results:
        return json.dumps({"tool": "roll_dice", "arguments": {"spec": "2d6"}})
    if len(results) == 1:
        return json.dumps({"tool": "calculator", "arguments": {"expression": f"{results[0]} * 3"}})
    return f"The answer is {results[1]}."
