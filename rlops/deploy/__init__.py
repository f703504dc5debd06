"""Deployment from git: each environment's overlay says which image and model it runs; promoting or rolling
back is one commit on that overlay, which Argo CD syncs and Argo Rollouts rolls out."""
