"""Presentation: questions in words, answers, text, reports and exports."""
