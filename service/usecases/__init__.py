"""Operations over the lineage DB that read or act through the model kinds (above
``service.kinds``; the lineage core and the audit chain sit below)."""
