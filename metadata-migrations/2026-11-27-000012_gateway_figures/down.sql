DROP TABLE gateway_figures;
