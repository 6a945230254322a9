"""Reasoning: statuses and verdicts per criterion, proof trees and their words, what-if, repairs, until."""
